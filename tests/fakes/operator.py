"""An Operator over in-memory ports with a clock the test moves, for the runtime and agent API tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from spot_operator.errors import CloudError
from spot_operator.inmemory import FixedClock, InMemoryEc2, InMemoryObjects, InMemoryTraffic
from spot_operator.planning import Pool
from spot_operator.ports import PriceObservation, QueueMessage
from spot_operator.runtime.loops import observe_cycle
from spot_operator.runtime.operator import Operator
from spot_operator.state import Heartbeat

START = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
EIP = "eipalloc-0123456789abcdef0"
ObjectsT = TypeVar("ObjectsT", bound=InMemoryObjects)

PRICES = {"m5.large.us-east-1a": 0.04, "m5.large.us-east-1b": 0.035, "m5a.large.us-east-1a": 0.03}


def agent_body(name: str = "web", mode: str = "manual-replica", uid: str = "uid-web") -> dict[str, Any]:
    return {
        "apiVersion": "spotoptimizer.io/v1alpha1",
        "kind": "SpotAgent",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": uid,
            "generation": 1,
            "creationTimestamp": START.isoformat(),
        },
        "spec": {
            "region": "us-east-1",
            "launchTemplate": {"name": "web"},
            "instanceTypes": ["m5.large", "m5a.large"],
            "zones": ["us-east-1a", "us-east-1b"],
            "mode": mode,
            "traffic": {"elasticIpAllocationId": EIP},
        },
    }


def make_operator(boot_seconds: float = 0.0) -> tuple[Operator, FixedClock, InMemoryEc2, InMemoryTraffic]:
    """``boot_seconds``: how long a new instance stays ``pending`` to a describe."""
    op, clock, ec2, traffic, _ = _build(InMemoryObjects, boot_seconds)
    return op, clock, ec2, traffic


def flaky_operator() -> tuple[Operator, FixedClock, InMemoryEc2, InMemoryTraffic, FlakyObjects]:
    """As :func:`make_operator`, with status writes that fail while ``objects.down``."""
    return _build(FlakyObjects)


def _build(
    objects_type: type[ObjectsT], boot_seconds: float = 0.0
) -> tuple[Operator, FixedClock, InMemoryEc2, InMemoryTraffic, ObjectsT]:
    clock = FixedClock(START)
    ec2, traffic, objects = InMemoryEc2(clock, boot_seconds), InMemoryTraffic(), objects_type(clock)
    op = Operator(ec2, traffic, objects, now=clock.now)
    op.book.add_spot(PriceObservation(Pool.parse(n), START, p) for n, p in PRICES.items())
    op.book.on_demand["us-east-1"] = {"m5.large": 0.096, "m5a.large": 0.086}
    return op, clock, ec2, traffic, objects


async def settle_with_heartbeats(op: Operator, clock: FixedClock, key: str, rounds: int = 6) -> None:
    """Reconcile, let every running instance's agent report in, and repeat."""
    for _ in range(rounds):
        await observe_cycle(op)
        await op.reconcile(key)
        for inst in list(op.agents[key].instances.values()):
            if inst.live:
                op.record_heartbeat(key, inst.instance_id, Heartbeat(clock.now()))
        await op.settle()
        clock.advance(5)


class FlakyObjects(InMemoryObjects):
    """The Kubernetes API refuses status writes while ``down``."""

    down = False

    async def patch_status(self, kind: str, namespace: str, name: str, status: dict[str, object]) -> None:
        if self.down:
            raise CloudError("the API server is unreachable")
        await super().patch_status(kind, namespace, name, status)


class ListQueue:
    """A NoticeQueue over a list: what is not deleted is delivered again."""

    def __init__(self, messages: list[QueueMessage]) -> None:
        self.messages = messages
        self.deleted: list[str] = []

    async def receive(self, wait_seconds: int = 20) -> list[QueueMessage]:
        return list(self.messages)

    async def delete(self, messages: Sequence[QueueMessage]) -> None:
        gone = {m.receipt for m in messages}
        self.deleted += sorted(gone)
        self.messages = [m for m in self.messages if m.receipt not in gone]
