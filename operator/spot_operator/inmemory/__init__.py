"""In-memory implementations of the ports: the simulator, the demo and the planner tests run on them.

They keep the semantics the planner relies on (client-token idempotency, capacity per pool, tags,
instance states over a clock) and record every call, so tests can count and inspect them.
"""

from spot_operator.inmemory.clock import Clock, FixedClock
from spot_operator.inmemory.ec2 import InMemoryEc2
from spot_operator.inmemory.objects import InMemoryObjects
from spot_operator.inmemory.traffic import InMemoryTraffic

__all__ = ["Clock", "FixedClock", "InMemoryEc2", "InMemoryObjects", "InMemoryTraffic"]
