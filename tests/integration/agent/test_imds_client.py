"""The IMDSv2 client against the IMDS emulator over real HTTP."""

from __future__ import annotations

import pytest

from spot_agent.imds import (
    INSTANCE_ACTION_PATH,
    SCHEDULED_EVENTS_PATH,
    TOKEN_PATH,
    ImdsClient,
    ImdsUnauthorized,
    ImdsUnreachable,
)
from spot_agent.payloads import parse_instance_action, parse_rebalance, parse_scheduled_events
from spot_agent.protocol import InstanceAction
from tests.fakes.imds import ImdsEmulator


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_identity_and_one_token_for_many_reads(imds: ImdsEmulator) -> None:
    client = ImdsClient(imds.url)
    identity = client.identity()
    assert identity.instance_id == "i-1234567890abcdef0"
    assert identity.pool == "m5.large.us-east-1a"
    for _ in range(5):
        client.observe()
    assert imds.count(TOKEN_PATH) == 1
    gets = [r for r in imds.requests if r.method == "GET"]
    assert len(gets) == 3 + 5 * 3
    assert all(r.had_token for r in gets)  # never an IMDSv1 request


def test_no_event_is_404_is_none(imds: ImdsEmulator) -> None:
    observation = ImdsClient(imds.url).observe()
    assert (observation.instance_action, observation.rebalance, observation.scheduled_events) == (
        None,
        None,
        None,
    )
    assert imds.count(INSTANCE_ACTION_PATH, 404) == 1


def test_empty_scheduled_events_as_a_list(imds: ImdsEmulator) -> None:
    imds.empty_scheduled_events = "[]"
    observation = ImdsClient(imds.url).observe()
    assert observation.scheduled_events is not None
    assert parse_scheduled_events(observation.scheduled_events) == []


def test_events_appear_when_triggered(imds: ImdsEmulator) -> None:
    client = ImdsClient(imds.url)
    imds.schedule_interruption(after_seconds=30, action="hibernate")
    imds.schedule_rebalance(after_seconds=10)
    event_id = imds.schedule_maintenance(after_seconds=20, code="instance-retirement")
    assert client.observe().instance_action is None
    imds.advance(10)
    observed = client.observe()
    assert observed.rebalance is not None
    assert observed.instance_action is None
    parse_rebalance(observed.rebalance)
    imds.advance(20)
    observed = client.observe()
    assert observed.instance_action is not None
    assert observed.scheduled_events is not None
    assert parse_instance_action(observed.instance_action).action is InstanceAction.HIBERNATE
    [event] = parse_scheduled_events(observed.scheduled_events)
    assert event.event_id == event_id
    assert event.code == "instance-retirement"


def test_401_fetches_a_new_token_and_retries_once(imds: ImdsEmulator) -> None:
    client = ImdsClient(imds.url)
    client.identity()
    imds.expire_tokens()  # IMDS forgot our token (as after it restarted)
    assert client.get_required("/latest/meta-data/instance-id") == "i-1234567890abcdef0"
    assert client.tokens_fetched == 2
    assert imds.count("/latest/meta-data/instance-id", 401) == 1
    assert imds.count("/latest/meta-data/instance-id", 200) == 2


def test_token_is_renewed_before_it_expires(imds: ImdsEmulator) -> None:
    clock = Clock()
    client = ImdsClient(imds.url, token_ttl_seconds=60, clock=clock)
    client.observe()
    clock.now = 50.0
    imds.advance(50)
    client.observe()
    assert imds.count(TOKEN_PATH) == 1  # still well inside the TTL
    clock.now = 55.0  # within the margin (a tenth of 60 s)
    imds.advance(5)
    client.observe()
    assert imds.count(TOKEN_PATH) == 2
    assert not [r for r in imds.requests if r.status == 401]  # renewed before IMDS would refuse it


def test_token_expired_at_imds_is_recovered(imds: ImdsEmulator) -> None:
    clock = Clock()
    client = ImdsClient(imds.url, token_ttl_seconds=60, clock=clock)
    client.observe()
    imds.advance(61)  # IMDS's clock ran ahead of ours
    assert client.get(SCHEDULED_EVENTS_PATH) is None
    assert imds.count(TOKEN_PATH) == 2


def test_persistent_401_is_an_error_after_one_retry(imds: ImdsEmulator) -> None:
    imds.reject_tokens = True
    client = ImdsClient(imds.url)
    with pytest.raises(ImdsUnauthorized, match="even with a fresh token"):
        client.get(INSTANCE_ACTION_PATH)
    assert imds.count(INSTANCE_ACTION_PATH, 401) == 2
    assert imds.count(TOKEN_PATH) == 2


def test_unreachable_names_the_hop_limit(imds: ImdsEmulator) -> None:
    url = imds.url
    imds.stop()
    with pytest.raises(ImdsUnreachable) as info:
        ImdsClient(url, timeout_seconds=0.5).observe()
    message = str(info.value)
    assert url in message
    assert "hop limit" in message
    assert "--http-put-response-hop-limit 2" in message
    assert "no IMDSv1 fallback" in message


def test_token_response_dropped_as_with_a_hop_limit_of_one(imds: ImdsEmulator) -> None:
    imds.drop_token_requests = True
    with pytest.raises(ImdsUnreachable, match="hop limit"):
        ImdsClient(imds.url, timeout_seconds=0.5).observe()
    assert imds.count(TOKEN_PATH) == 1
    assert not [r for r in imds.requests if r.method == "GET"]  # no fallback to tokenless requests
