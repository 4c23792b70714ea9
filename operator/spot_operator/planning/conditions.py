"""Kubernetes-style conditions: set one, keeping lastTransitionTime when its status did not change."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from spot_operator.api import Condition, ConditionStatus


def set_condition(
    existing: Sequence[Condition],
    type_: str,
    status: bool | ConditionStatus,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None = None,
) -> list[Condition]:
    if isinstance(status, bool):
        status = ConditionStatus.TRUE if status else ConditionStatus.FALSE
    previous = next((c for c in existing if c.type == type_), None)
    since = previous.last_transition_time if previous and previous.status == status else now
    updated = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message[:4096],
        last_transition_time=since,
        observed_generation=generation,
    )
    return [*(c for c in existing if c.type != type_), updated]


def condition(conditions: Sequence[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def is_true(conditions: Sequence[Condition], type_: str) -> bool:
    found = condition(conditions, type_)
    return found is not None and found.status is ConditionStatus.TRUE
