from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from spot_agent.imds import Observation
from spot_agent.notices import NoticeTracker, idempotency_key, read_notices
from spot_agent.protocol import InstanceAction, NoticeKind

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
IID = "i-0123456789abcdef0"
ACTION = json.dumps({"action": "stop", "time": "2024-05-01T12:02:00Z"})
REBALANCE = json.dumps({"noticeTime": "2024-05-01T11:59:00Z"})
EVENTS = json.dumps(
    [
        {
            "Code": "instance-retirement",
            "State": "active",
            "EventId": "instance-event-aaa",
            "NotBefore": "8 May 2024 10:00:00 GMT",
            "Description": "retire",
        },
        {
            "Code": "system-reboot",
            "State": "completed",
            "EventId": "instance-event-bbb",
            "NotBefore": "1 Apr 2024 10:00:00 GMT",
        },
    ]
)


def test_nothing_to_report() -> None:
    reading = read_notices(Observation(None, None, None), IID, NOW)
    assert reading.notices == []
    assert reading.problems == []


def test_each_kind() -> None:
    reading = read_notices(Observation(ACTION, REBALANCE, EVENTS), IID, NOW)
    assert reading.problems == []
    by_kind = {n.kind: n for n in reading.notices}
    assert set(by_kind) == {NoticeKind.INTERRUPTION, NoticeKind.REBALANCE, NoticeKind.MAINTENANCE}
    interruption = by_kind[NoticeKind.INTERRUPTION]
    assert interruption.action is InstanceAction.STOP
    assert interruption.deadline == datetime(2024, 5, 1, 12, 2, tzinfo=UTC)
    assert interruption.raw == ACTION
    rebalance = by_kind[NoticeKind.REBALANCE]
    assert rebalance.action is None
    assert rebalance.deadline is None
    assert rebalance.notice_time == datetime(2024, 5, 1, 11, 59, tzinfo=UTC)
    maintenance = by_kind[NoticeKind.MAINTENANCE]  # only the active event
    assert maintenance.event_id == "instance-event-aaa"
    assert maintenance.event_code == "instance-retirement"
    assert maintenance.deadline == datetime(2024, 5, 8, 10, 0, tzinfo=UTC)
    assert all(n.instance_id == IID for n in reading.notices)


def test_keys_are_stable_across_polls_and_differ_between_events() -> None:
    first = read_notices(Observation(ACTION, REBALANCE, EVENTS), IID, NOW)
    later = read_notices(Observation(ACTION, REBALANCE, EVENTS), IID, NOW + timedelta(seconds=5))
    assert [n.idempotency_key for n in first.notices] == [n.idempotency_key for n in later.notices]
    other = read_notices(Observation(ACTION.replace("12:02", "12:03"), None, None), IID, NOW)
    assert other.notices[0].idempotency_key != first.notices[0].idempotency_key
    elsewhere = read_notices(Observation(ACTION, None, None), "i-0123456789abcdef1", NOW)
    assert elsewhere.notices[0].idempotency_key != first.notices[0].idempotency_key


def test_tracker_reports_each_event_once() -> None:
    tracker = NoticeTracker()
    first = tracker.fresh(read_notices(Observation(None, REBALANCE, None), IID, NOW).notices)
    assert [n.kind for n in first] == [NoticeKind.REBALANCE]
    again = tracker.fresh(read_notices(Observation(None, REBALANCE, None), IID, NOW).notices)
    assert again == []
    both = tracker.fresh(read_notices(Observation(ACTION, REBALANCE, None), IID, NOW).notices)
    assert [n.kind for n in both] == [NoticeKind.INTERRUPTION]


def test_unparsable_instance_action_reports_the_worst_case() -> None:
    reading = read_notices(Observation("<html>oops</html>", None, None), IID, NOW)
    [notice] = reading.notices
    assert notice.kind is NoticeKind.INTERRUPTION
    assert notice.action is InstanceAction.TERMINATE
    assert notice.deadline == NOW + timedelta(minutes=2)
    assert notice.raw == "<html>oops</html>"
    assert reading.problems
    assert "not JSON" in reading.problems[0]


def test_unparsable_events_are_a_problem_not_a_notice() -> None:
    reading = read_notices(Observation(None, None, "{{"), IID, NOW)
    assert reading.notices == []
    assert "events/maintenance/scheduled" in reading.problems[0]


def test_idempotency_key_shape() -> None:
    key = idempotency_key("a", "b")
    assert len(key) == 32
    assert key == idempotency_key("a", "b") != idempotency_key("a\0b")
