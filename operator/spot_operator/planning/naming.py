"""Deterministic names for the objects the planner creates, and step keys for its actions."""

from __future__ import annotations

import hashlib
from datetime import datetime

MAX_NAME = 63  # names double as label and tag values


def stamp(now: datetime) -> str:
    return now.strftime("%Y%m%d%H%M%S")


def child_name(agent: str, kind: str, suffix: str) -> str:
    """'<agent>-<kind>-<suffix>', shortened with a digest of the agent name when too long."""
    name = f"{agent}-{kind}-{suffix}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(agent.encode()).hexdigest()[:8]
    room = MAX_NAME - len(kind) - len(suffix) - len(digest) - 3
    return f"{agent[: max(room, 1)].rstrip('-.')}{digest}-{kind}-{suffix}"


def failover_name(agent: str, lost_instance: str, attempt: int = 1) -> str:
    suffix = lost_instance if attempt <= 1 else f"{lost_instance}-{attempt}"
    return child_name(agent, "failover", suffix)


def rebalance_name(agent: str, instance: str) -> str:
    return child_name(agent, "rebalance", instance)


def standby_name(agent: str, now: datetime) -> str:
    return child_name(agent, "standby", stamp(now))


def decision_name(agent: str, now: datetime) -> str:
    return child_name(agent, "decision", stamp(now))
