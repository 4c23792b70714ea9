"""Pure parsing of the EventBridge events the interruption queue carries, into typed notices.

| source     | detail-type                                   | notice                               |
|------------|-----------------------------------------------|--------------------------------------|
| aws.ec2    | EC2 Spot Instance Interruption Warning        | INTERRUPTION, deadline = time + 2 min |
| aws.ec2    | EC2 Instance Rebalance Recommendation         | REBALANCE                            |
| aws.ec2    | EC2 Instance State-change Notification        | STOPPED for stopping, stopped,       |
|            |                                               | shutting-down, terminated            |
| aws.health | AWS Health Event (service EC2, scheduledChange)| MAINTENANCE per affected instance   |

Other states and other Health events are understood and ignored (an empty list); anything else raises
:class:`EventError`, so the consumer logs it and deletes the message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from spot_operator.planning.model import Notice, NoticeKind

SOURCE = "sqs"
INTERRUPTION_LEAD = timedelta(minutes=2)

SPOT_INTERRUPTION = "EC2 Spot Instance Interruption Warning"
REBALANCE = "EC2 Instance Rebalance Recommendation"
STATE_CHANGE = "EC2 Instance State-change Notification"
HEALTH = "AWS Health Event"
DETAIL_TYPES = (SPOT_INTERRUPTION, REBALANCE, STATE_CHANGE, HEALTH)
STOPPED_STATES = frozenset({"stopping", "stopped", "shutting-down", "terminated"})


class EventError(ValueError):
    """A message that is not one of the events we understand, or is malformed."""


def _time(value: object, what: str) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)  # epoch seconds (what moto's EventBridge writes)
    if not isinstance(value, str) or not value:
        raise EventError(f"{what}: missing time")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(value)  # Health events have used RFC 1123 dates
        except (TypeError, ValueError):
            raise EventError(f"{what}: time {value!r} is not a date") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _instance_id(detail: Mapping[str, Any], detail_type: str) -> str:
    instance_id = detail.get("instance-id")
    if not isinstance(instance_id, str) or not instance_id.startswith("i-"):
        raise EventError(f"{detail_type}: detail.instance-id {instance_id!r} is not an instance id")
    return instance_id


def parse_event(body: str, received_at: datetime) -> list[Notice]:
    """An SQS message body holding one EventBridge event -> the notices it carries (possibly none)."""
    try:
        event = json.loads(body)
    except json.JSONDecodeError as exc:
        raise EventError(f"not JSON: {exc}") from None
    if not isinstance(event, dict):
        raise EventError("not an EventBridge event: the body is not an object")
    detail_type = event.get("detail-type")
    detail = event.get("detail")
    if detail_type not in DETAIL_TYPES:
        raise EventError(f"unknown event {detail_type!r} from {event.get('source')!r}")
    if not isinstance(detail, dict):
        raise EventError(f"{detail_type}: no detail object")
    if detail_type == SPOT_INTERRUPTION:
        issued = _time(event.get("time"), detail_type)
        instance_id = _instance_id(detail, detail_type)
        return [Notice(instance_id, NoticeKind.INTERRUPTION, received_at, issued + INTERRUPTION_LEAD, SOURCE)]
    if detail_type == REBALANCE:
        return [Notice(_instance_id(detail, detail_type), NoticeKind.REBALANCE, received_at, None, SOURCE)]
    if detail_type == STATE_CHANGE:
        instance_id = _instance_id(detail, detail_type)
        state = detail.get("state")
        if not isinstance(state, str):
            raise EventError(f"{detail_type}: detail.state missing")
        if state.lower() not in STOPPED_STATES:
            return []
        return [Notice(instance_id, NoticeKind.STOPPED, received_at, None, SOURCE)]
    return _health(detail, received_at)


def _health(detail: Mapping[str, Any], received_at: datetime) -> list[Notice]:
    if detail.get("service") != "EC2" or detail.get("eventTypeCategory") != "scheduledChange":
        return []
    entities = detail.get("affectedEntities")
    if not isinstance(entities, list):
        raise EventError(f"{HEALTH}: affectedEntities is not a list")
    start = detail.get("startTime")
    try:
        deadline: datetime | None = _time(start, HEALTH) if start else None
    except EventError:
        deadline = None  # the notice matters more than its date
    notices: list[Notice] = []
    for entity in entities:
        value = entity.get("entityValue") if isinstance(entity, dict) else None
        if isinstance(value, str) and value.startswith("i-"):
            notices.append(Notice(value, NoticeKind.MAINTENANCE, received_at, deadline, SOURCE))
    return notices
