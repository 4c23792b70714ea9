"""From one IMDS observation to the notices to report. Pure: the time of the observation is passed in.

Each notice's idempotency key is derived from the instance and the event itself (action and time,
noticeTime, EventId), so the same event seen on every poll, or again after the agent restarts, is the
same report, and the operator acts on it once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from spot_agent.imds import Observation
from spot_agent.payloads import (
    PayloadError,
    parse_instance_action,
    parse_rebalance,
    parse_scheduled_events,
)
from spot_agent.protocol import RAW_MAX_LENGTH, InstanceAction, NoticeKind, NoticeReport

INTERRUPTION_WARNING = timedelta(minutes=2)


def idempotency_key(*parts: str) -> str:
    """A stable 32-character key for a report made of these parts (length-prefixed: no two part lists
    encode alike)."""
    encoded = "".join(f"{len(part)}:{part}" for part in parts)
    return hashlib.sha256(encoded.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Reading:
    notices: list[NoticeReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # payloads that did not parse


def _raw(body: str) -> str:
    return body[:RAW_MAX_LENGTH]


def read_notices(observation: Observation, instance_id: str, now: datetime) -> Reading:
    """Every notice the observation shows (seen before or not)."""
    notices: list[NoticeReport] = []
    problems: list[str] = []

    if observation.instance_action is not None:
        body = observation.instance_action
        try:
            parsed = parse_instance_action(body)
            action, deadline = parsed.action, parsed.time
            key = idempotency_key(instance_id, "interruption", action.value, deadline.isoformat())
        except PayloadError as exc:
            # A 200 here means the instance is being reclaimed whatever the body says: report the worst
            # case (terminate, two minutes from now) rather than drop the notice.
            problems.append(str(exc))
            action, deadline = InstanceAction.TERMINATE, now + INTERRUPTION_WARNING
            key = idempotency_key(instance_id, "interruption", "unparsed", body)
        notices.append(
            NoticeReport(
                instance_id=instance_id,
                kind=NoticeKind.INTERRUPTION,
                action=action,
                notice_time=now,
                deadline=deadline,
                raw=_raw(body),
                idempotency_key=key,
            )
        )

    if observation.rebalance is not None:
        body = observation.rebalance
        try:
            notice_time = parse_rebalance(body).notice_time
            key = idempotency_key(instance_id, "rebalance", notice_time.isoformat())
        except PayloadError as exc:
            problems.append(str(exc))
            notice_time = now
            key = idempotency_key(instance_id, "rebalance", "unparsed", body)
        notices.append(
            NoticeReport(
                instance_id=instance_id,
                kind=NoticeKind.REBALANCE,
                notice_time=notice_time,
                raw=_raw(body),
                idempotency_key=key,
            )
        )

    if observation.scheduled_events is not None:
        body = observation.scheduled_events
        try:
            events = parse_scheduled_events(body)
        except PayloadError as exc:
            problems.append(str(exc))
            events = []
        for event in events:
            if not event.active:
                continue
            notices.append(
                NoticeReport(
                    instance_id=instance_id,
                    kind=NoticeKind.MAINTENANCE,
                    notice_time=now,
                    deadline=event.not_before,
                    event_id=event.event_id[:128],
                    event_code=event.code[:64],
                    raw=_raw(body),
                    idempotency_key=idempotency_key(instance_id, "maintenance", event.event_id),
                )
            )

    return Reading(notices, problems)


class NoticeTracker:
    """Remembers which notices were already handed on, so each event is reported once."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def fresh(self, notices: list[NoticeReport]) -> list[NoticeReport]:
        new = [n for n in notices if n.idempotency_key not in self._seen]
        self._seen.update(n.idempotency_key for n in new)
        return new
