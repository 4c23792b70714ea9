"""Pure parsers for the IMDS payloads the agent reads. No I/O.

Formats (as EC2 serves them, and amazon-ec2-metadata-mock mimics them):
- ``/latest/meta-data/spot/instance-action``: ``{"action": "terminate|stop|hibernate", "time": "<RFC 3339>"}``
- ``/latest/meta-data/events/recommendations/rebalance``: ``{"noticeTime": "<RFC 3339>"}``
- ``/latest/meta-data/events/maintenance/scheduled``: a JSON list of
  ``{"Code", "Description", "State", "EventId", "NotBefore", "NotAfter", "NotBeforeDeadline"}`` with times
  written as ``21 Jan 2019 09:00:43 GMT``; ``[]`` when there is none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from spot_agent.protocol import InstanceAction

# Scheduled events write times as Go's "2 Jan 2006 15:04:05 GMT".
EVENT_TIME_FORMAT = "%d %b %Y %H:%M:%S GMT"


class PayloadError(ValueError):
    """An IMDS payload that does not have the documented shape; the message names the path and field."""


@dataclass(frozen=True)
class InterruptionNotice:
    action: InstanceAction
    time: datetime


@dataclass(frozen=True)
class RebalanceRecommendation:
    notice_time: datetime


@dataclass(frozen=True)
class ScheduledEvent:
    code: str
    state: str
    event_id: str
    description: str = ""
    not_before: datetime | None = None
    not_after: datetime | None = None
    not_before_deadline: datetime | None = None

    @property
    def active(self) -> bool:
        """Completed and canceled events stay listed for a while; only active ones are notices."""
        return self.state.lower() == "active"


def parse_rfc3339(value: object, where: str) -> datetime:
    if not isinstance(value, str) or not value:
        raise PayloadError(f"{where}: expected an RFC 3339 time string, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise PayloadError(f"{where}: {value!r} is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise PayloadError(f"{where}: {value!r} has no UTC offset")
    return parsed.astimezone(UTC)


def parse_event_time(value: object, where: str) -> datetime | None:
    """'21 Jan 2019 09:00:43 GMT' -> aware datetime; empty (or Go's zero time) -> None."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise PayloadError(f"{where}: expected a time string, got {value!r}")
    try:
        parsed = datetime.strptime(value.strip(), EVENT_TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise PayloadError(f"{where}: {value!r} is not a time like '21 Jan 2019 09:00:43 GMT'") from None
    return None if parsed.year <= 1 else parsed


def _object(body: str, where: str) -> dict[str, object]:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise PayloadError(f"{where}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise PayloadError(f"{where}: expected a JSON object, got {type(data).__name__}")
    return data


def parse_instance_action(body: str) -> InterruptionNotice:
    where = "spot/instance-action"
    data = _object(body, where)
    action = data.get("action")
    try:
        parsed_action = InstanceAction(str(action).lower())
    except ValueError:
        choices = ", ".join(a.value for a in InstanceAction)
        raise PayloadError(f"{where}: action {action!r} is not one of {choices}") from None
    return InterruptionNotice(parsed_action, parse_rfc3339(data.get("time"), f"{where}: time"))


def parse_rebalance(body: str) -> RebalanceRecommendation:
    where = "events/recommendations/rebalance"
    data = _object(body, where)
    return RebalanceRecommendation(parse_rfc3339(data.get("noticeTime"), f"{where}: noticeTime"))


def parse_scheduled_events(body: str) -> list[ScheduledEvent]:
    where = "events/maintenance/scheduled"
    if not body.strip():
        return []
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise PayloadError(f"{where}: not JSON ({exc})") from None
    if isinstance(data, dict):  # tolerate a single event not wrapped in a list
        data = [data]
    if not isinstance(data, list):
        raise PayloadError(f"{where}: expected a JSON list of events, got {type(data).__name__}")
    events = []
    for i, item in enumerate(data):
        at = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise PayloadError(f"{at}: expected an object, got {type(item).__name__}")
        code, event_id, state = item.get("Code"), item.get("EventId"), item.get("State", "active")
        if not isinstance(code, str) or not code:
            raise PayloadError(f"{at}: Code is missing")
        if not isinstance(event_id, str) or not event_id:
            raise PayloadError(f"{at}: EventId is missing")
        if not isinstance(state, str):
            raise PayloadError(f"{at}: State {state!r} is not a string")
        description = item.get("Description", "")
        events.append(
            ScheduledEvent(
                code=code,
                state=state or "active",
                event_id=event_id,
                description=description if isinstance(description, str) else "",
                not_before=parse_event_time(item.get("NotBefore"), f"{at}: NotBefore"),
                not_after=parse_event_time(item.get("NotAfter"), f"{at}: NotAfter"),
                not_before_deadline=parse_event_time(
                    item.get("NotBeforeDeadline"), f"{at}: NotBeforeDeadline"
                ),
            )
        )
    return events


def format_event_time(value: datetime) -> str:
    """The inverse of :func:`parse_event_time` (no zero padding of the day, as EC2 writes it)."""
    value = value.astimezone(UTC)
    return f"{value.day} {value.strftime('%b %Y %H:%M:%S')} GMT"
