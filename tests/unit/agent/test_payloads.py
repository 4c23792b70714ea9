from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spot_agent.payloads import (
    PayloadError,
    format_event_time,
    parse_event_time,
    parse_instance_action,
    parse_rebalance,
    parse_scheduled_events,
)
from spot_agent.protocol import InstanceAction

# As amazon-ec2-metadata-mock serves them (tab-indented JSON).
AEMM_INSTANCE_ACTION = '{\n\t"action": "terminate",\n\t"time": "2020-01-07T01:03:47Z"\n}'
AEMM_REBALANCE = '{\n\t"noticeTime": "2020-10-26T15:55:55Z"\n}'
AEMM_EVENTS = """[
\t{
\t\t"Code": "system-reboot",
\t\t"Description": "The instance is scheduled for system-reboot",
\t\t"State": "active",
\t\t"EventId": "instance-event-1234567890abcdef0",
\t\t"NotBefore": "21 Jan 2019 09:00:43 GMT",
\t\t"NotAfter": "21 Jan 2019 09:17:23 GMT",
\t\t"NotBeforeDeadline": "24 Jan 2019 09:00:43 GMT"
\t}
]"""


@pytest.mark.parametrize("action", ["terminate", "stop", "hibernate"])
def test_instance_action_each_action(action: str) -> None:
    notice = parse_instance_action(AEMM_INSTANCE_ACTION.replace("terminate", action))
    assert notice.action is InstanceAction(action)
    assert notice.time == datetime(2020, 1, 7, 1, 3, 47, tzinfo=UTC)


def test_instance_action_with_offset_is_normalised_to_utc() -> None:
    notice = parse_instance_action('{"action": "stop", "time": "2020-01-07T03:03:47+02:00"}')
    assert notice.time == datetime(2020, 1, 7, 1, 3, 47, tzinfo=UTC)
    assert notice.time.tzinfo is UTC


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ('{"action": "reboot", "time": "2020-01-07T01:03:47Z"}', "action 'reboot'"),
        ('{"time": "2020-01-07T01:03:47Z"}', "action None"),
        ('{"action": "stop", "time": "tomorrow"}', "time: 'tomorrow'"),
        ('{"action": "stop", "time": "2020-01-07T01:03:47"}', "no UTC offset"),
        ('{"action": "stop"}', "time: expected an RFC 3339"),
        ("not json", "not JSON"),
        ('["terminate"]', "expected a JSON object"),
    ],
)
def test_instance_action_errors_name_the_problem(body: str, names: str) -> None:
    with pytest.raises(PayloadError, match="spot/instance-action") as info:
        parse_instance_action(body)
    assert names in str(info.value)


def test_rebalance() -> None:
    assert parse_rebalance(AEMM_REBALANCE).notice_time == datetime(2020, 10, 26, 15, 55, 55, tzinfo=UTC)
    with pytest.raises(PayloadError, match="noticeTime"):
        parse_rebalance('{"time": "2020-10-26T15:55:55Z"}')


def test_scheduled_events_aemm_format() -> None:
    [event] = parse_scheduled_events(AEMM_EVENTS)
    assert event.code == "system-reboot"
    assert event.event_id == "instance-event-1234567890abcdef0"
    assert event.active
    assert event.not_before == datetime(2019, 1, 21, 9, 0, 43, tzinfo=UTC)
    assert event.not_after == datetime(2019, 1, 21, 9, 17, 23, tzinfo=UTC)
    assert event.not_before_deadline == datetime(2019, 1, 24, 9, 0, 43, tzinfo=UTC)


def test_scheduled_events_empty_list_and_blank() -> None:
    assert parse_scheduled_events("[]") == []
    assert parse_scheduled_events("  ") == []


def test_completed_and_canceled_events_are_not_active() -> None:
    body = AEMM_EVENTS.replace('"active"', '"completed"')
    [event] = parse_scheduled_events(body)
    assert not event.active
    [event] = parse_scheduled_events(AEMM_EVENTS.replace('"active"', '"canceled"'))
    assert not event.active


def test_go_zero_time_and_empty_times_are_absent() -> None:
    body = AEMM_EVENTS.replace("21 Jan 2019 09:17:23 GMT", "1 Jan 0001 00:00:00 GMT").replace(
        "24 Jan 2019 09:00:43 GMT", ""
    )
    [event] = parse_scheduled_events(body)
    assert event.not_after is None
    assert event.not_before_deadline is None
    assert event.not_before is not None


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ('[{"EventId": "instance-event-1"}]', "[0]: Code is missing"),
        ('[{"Code": "system-reboot"}]', "[0]: EventId is missing"),
        ('[{"Code": "x", "EventId": "e", "NotBefore": "2019-01-21"}]', "[0]: NotBefore"),
        ('"nope"', "expected a JSON list"),
        ("[1]", "[0]: expected an object"),
        ("{", "not JSON"),
    ],
)
def test_scheduled_event_errors(body: str, names: str) -> None:
    with pytest.raises(PayloadError) as info:
        parse_scheduled_events(body)
    assert names in str(info.value)


@given(
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1)).map(
        lambda d: d.replace(microsecond=0)
    )
)
def test_event_time_round_trip(value: datetime) -> None:
    aware = value.replace(tzinfo=UTC)
    text = format_event_time(aware)
    assert not text.startswith("0")  # the day is not zero-padded, as EC2 writes it
    assert parse_event_time(text, "t") == aware
