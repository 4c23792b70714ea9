"""Whether an instance can take traffic, from its EC2 state and its agent's heartbeats."""

from __future__ import annotations

from datetime import datetime

from spot_operator.api import SpotAgentSpec
from spot_operator.planning.model import Instance, InstanceState


def is_healthy(instance: Instance, spec: SpotAgentSpec, now: datetime) -> bool:
    """Running, and (when an agent is expected) heard from since launch and within the timeout."""
    if instance.state is not InstanceState.RUNNING:
        return False
    if not spec.agent.enabled:
        return True
    beat = instance.last_heartbeat
    if beat is None or beat < instance.launched_at:
        return False
    return (now - beat).total_seconds() <= spec.agent.heartbeat_timeout_seconds


def is_ready(instance: Instance, spec: SpotAgentSpec, now: datetime) -> bool:
    """Healthy and, for a standby, done copying state."""
    return is_healthy(instance, spec, now) and instance.sync_progress >= 100
