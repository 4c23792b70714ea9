"""EventBridge events (shapes as AWS documents them) -> notices."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from spot_operator.adapters.aws.events import EventError, parse_event
from spot_operator.planning.model import NoticeKind

NOW = datetime(2024, 6, 1, 12, 0, 30, tzinfo=UTC)


def event(
    detail_type: str, detail: dict[str, Any], source: str = "aws.ec2", time: str = "2024-06-01T12:00:00Z"
) -> str:
    return json.dumps(
        {
            "version": "0",
            "id": "7bf73129-1428-4cd3-a780-95db273d1602",
            "detail-type": detail_type,
            "source": source,
            "account": "123456789012",
            "time": time,
            "region": "us-east-1",
            "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-1234567890abcdef0"],
            "detail": detail,
        }
    )


def test_spot_interruption_deadline_is_two_minutes_after_the_event() -> None:
    body = event(
        "EC2 Spot Instance Interruption Warning",
        {"instance-id": "i-1234567890abcdef0", "instance-action": "terminate"},
    )
    [notice] = parse_event(body, NOW)
    assert notice.kind is NoticeKind.INTERRUPTION
    assert notice.instance_id == "i-1234567890abcdef0"
    assert notice.deadline == datetime(2024, 6, 1, 12, 0, tzinfo=UTC) + timedelta(minutes=2)
    assert (notice.received_at, notice.source) == (NOW, "sqs")


def test_rebalance_recommendation() -> None:
    [notice] = parse_event(event("EC2 Instance Rebalance Recommendation", {"instance-id": "i-0abc"}), NOW)
    assert (notice.kind, notice.instance_id, notice.deadline) == (NoticeKind.REBALANCE, "i-0abc", None)


@pytest.mark.parametrize("state", ["stopping", "stopped", "shutting-down", "terminated"])
def test_state_changes_that_end_an_instance(state: str) -> None:
    body = event("EC2 Instance State-change Notification", {"instance-id": "i-0abc", "state": state})
    [notice] = parse_event(body, NOW)
    assert notice.kind is NoticeKind.STOPPED


@pytest.mark.parametrize("state", ["pending", "running"])
def test_state_changes_we_ignore(state: str) -> None:
    body = event("EC2 Instance State-change Notification", {"instance-id": "i-0abc", "state": state})
    assert parse_event(body, NOW) == []


def health(
    category: str = "scheduledChange", service: str = "EC2", start: str = "Sat, 05 Jun 2021 15:10:09 GMT"
) -> str:
    return event(
        "AWS Health Event",
        {
            "eventArn": "arn:aws:health:us-east-1::event/EC2/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED/x",
            "service": service,
            "eventTypeCode": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
            "eventTypeCategory": category,
            "startTime": start,
            "eventDescription": [{"language": "en_US", "latestDescription": "retirement"}],
            "affectedEntities": [
                {"entityValue": "i-0aaa"},
                {"entityValue": "i-0bbb"},
                {"entityValue": "vol-1"},
            ],
        },
        source="aws.health",
    )


def test_health_scheduled_change_gives_one_notice_per_instance() -> None:
    notices = parse_event(health(), NOW)
    assert [(n.instance_id, n.kind) for n in notices] == [
        ("i-0aaa", NoticeKind.MAINTENANCE),
        ("i-0bbb", NoticeKind.MAINTENANCE),
    ]
    assert notices[0].deadline == datetime(2021, 6, 5, 15, 10, 9, tzinfo=UTC)


def test_health_iso_start_time_and_unreadable_start_time() -> None:
    assert parse_event(health(start="2024-06-03T00:00:00Z"), NOW)[0].deadline == datetime(
        2024, 6, 3, tzinfo=UTC
    )
    assert parse_event(health(start="next week"), NOW)[0].deadline is None


def test_health_events_of_other_kinds_are_ignored() -> None:
    assert parse_event(health(category="issue"), NOW) == []
    assert parse_event(health(service="RDS"), NOW) == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not an object"),
        (json.dumps({"detail-type": "Object Created", "source": "aws.s3", "detail": {}}), "unknown event"),
        (event("EC2 Spot Instance Interruption Warning", {"instance-action": "terminate"}), "instance-id"),
        (json.dumps({"detail-type": "EC2 Instance Rebalance Recommendation"}), "no detail"),
        (event("EC2 Instance State-change Notification", {"instance-id": "i-0abc"}), "detail.state"),
        (event("EC2 Spot Instance Interruption Warning", {"instance-id": "i-1"}, time="soon"), "not a date"),
    ],
)
def test_malformed_events_name_the_problem(body: str, problem: str) -> None:
    with pytest.raises(EventError, match=problem):
        parse_event(body, NOW)


def test_event_time_as_epoch_seconds() -> None:
    body = json.loads(event("EC2 Spot Instance Interruption Warning", {"instance-id": "i-1"}))
    body["time"] = 1717243200.0  # 2024-06-01T12:00:00Z
    [notice] = parse_event(json.dumps(body), NOW)
    assert notice.deadline == datetime(2024, 6, 1, 12, 2, tzinfo=UTC)
