"""The agent API over real HTTP: the auth matrix, every 4xx, and what reaches the sink."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from spot_operator import metrics
from spot_operator.agent_api import AgentApiServer, InMemorySink, TokenStore, create_app
from spot_operator.planning.model import NoticeKind
from tests.integration.agent_api.harness import AGENT, INSTANCE, OTHER_AGENT, OTHER_INSTANCE, Api


def now() -> str:
    return datetime.now(UTC).isoformat()


def heartbeat_body(**over: Any) -> dict[str, Any]:
    body = {
        "instanceId": INSTANCE,
        "agentVersion": "0.1.0",
        "health": "ok",
        "syncProgress": 100,
        "sentAt": now(),
        "idempotencyKey": "beat-0000000001",
    }
    body.update(over)
    return body


def notice_body(**over: Any) -> dict[str, Any]:
    body = {
        "instanceId": INSTANCE,
        "kind": "interruption",
        "action": "terminate",
        "noticeTime": now(),
        "deadline": (datetime.now(UTC) + timedelta(minutes=2)).isoformat(),
        "raw": '{"action": "terminate", "time": "..."}',
        "idempotencyKey": "notice-000000001",
    }
    body.update(over)
    return body


def hook_body(**over: Any) -> dict[str, Any]:
    body = {
        "instanceId": INSTANCE,
        "hook": "pre-stop",
        "exitCode": 0,
        "startedAt": now(),
        "durationSeconds": 1.5,
        "stdoutTail": "drained\n",
        "idempotencyKey": "hook-0000000001",
    }
    body.update(over)
    return body


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def post(http: aiohttp.ClientSession, url: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
    async with http.post(url, json=body, headers=headers) as response:
        assert response.content_type == "application/json"
        return response.status, await response.json()


def notice_count(kind: str, duplicate: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "spot_optimizer_notice_received_total", {"type": kind, "source": "agent", "duplicate": duplicate}
    )
    return value or 0.0


# --------------------------------------------------------------------------------------- happy paths


async def test_heartbeat_is_recorded(api: Api, http: aiohttp.ClientSession) -> None:
    status, body = await post(http, api.path("heartbeat"), heartbeat_body(syncProgress=55), auth(api.token))
    assert status == 200
    assert body["status"] == "ok"
    assert datetime.fromisoformat(body["serverTime"]).tzinfo is not None
    record = api.sink.record(AGENT)
    assert record.heartbeats[INSTANCE].sync_progress == 55


async def test_notice_is_accepted_then_duplicate(api: Api, http: aiohttp.ClientSession) -> None:
    accepted_before = notice_count("interruption", "false")
    duplicate_before = notice_count("interruption", "true")
    status, body = await post(http, api.path("notices"), notice_body(), auth(api.token))
    assert (status, body) == (202, {"status": "accepted", "idempotencyKey": "notice-000000001"})
    # The same notice again (a retry from the spool), then the same event under another key (after a
    # restart of the agent): both duplicates, the operator acts once.
    status, body = await post(http, api.path("notices"), notice_body(), auth(api.token))
    assert (status, body["status"]) == (202, "duplicate")
    status, body = await post(
        http, api.path("notices"), notice_body(idempotencyKey="other-key-0001"), auth(api.token)
    )
    assert (status, body["status"]) == (202, "duplicate")
    record = api.sink.record(AGENT)
    assert list(record.notices) == [(INSTANCE, NoticeKind.INTERRUPTION)]
    assert record.duplicates == 2
    assert notice_count("interruption", "false") == accepted_before + 1
    assert notice_count("interruption", "true") == duplicate_before + 2


async def test_rebalance_then_interruption_are_two_notices(api: Api, http: aiohttp.ClientSession) -> None:
    rebalance = notice_body(kind="rebalance", action=None, deadline=None, idempotencyKey="rebalance-00001")
    assert (await post(http, api.path("notices"), rebalance, auth(api.token)))[1]["status"] == "accepted"
    assert (await post(http, api.path("notices"), notice_body(), auth(api.token)))[1]["status"] == "accepted"
    assert set(api.sink.record(AGENT).notices) == {
        (INSTANCE, NoticeKind.REBALANCE),
        (INSTANCE, NoticeKind.INTERRUPTION),
    }


async def test_hook_result_is_recorded(api: Api, http: aiohttp.ClientSession) -> None:
    status, body = await post(http, api.path("hooks"), hook_body(), auth(api.token))
    assert (status, body) == (202, {"status": "accepted", "idempotencyKey": "hook-0000000001"})
    assert api.sink.record(AGENT).hooks["hook-0000000001"].stdout_tail == "drained\n"


async def test_health_and_openapi_need_no_token(api: Api, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{api.url}/healthz") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok"}
    async with http.get(f"{api.url}/openapi.json") as response:
        document = await response.json()
    assert document["openapi"] == "3.1.0"
    assert "/v1/namespaces/{namespace}/agents/{name}/notices" in document["paths"]


# ------------------------------------------------------------------------------------------ auth


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_token"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "malformed_authorization"),
        ({"Authorization": "Bearer "}, "malformed_authorization"),
        ({"Authorization": "Bearer not-a-token-we-issued"}, "invalid_token"),
    ],
)
async def test_without_a_valid_token_401(
    api: Api, http: aiohttp.ClientSession, headers: dict[str, str], code: str
) -> None:
    async with http.post(api.path("notices"), json=notice_body(), headers=headers) as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        body = await response.json()
    assert body["error"] == code
    assert api.sink.record(AGENT).notices == {}


async def test_another_agents_token_is_403(api: Api, http: aiohttp.ClientSession) -> None:
    status, body = await post(http, api.path("notices"), notice_body(), auth(api.other_token))
    assert status == 403
    assert body["error"] == "forbidden"
    assert AGENT in body["message"]
    assert api.sink.record(AGENT).notices == {}
    assert api.sink.record(OTHER_AGENT).notices == {}


async def test_the_other_agent_with_its_own_token_and_instance(api: Api, http: aiohttp.ClientSession) -> None:
    body = notice_body(instanceId=OTHER_INSTANCE)
    status, _ = await post(http, api.path("notices", OTHER_AGENT), body, auth(api.other_token))
    assert status == 202
    # ... but not with AGENT's instance: one agent cannot report another's instance.
    status, answer = await post(http, api.path("notices", OTHER_AGENT), notice_body(), auth(api.other_token))
    assert status == 404
    assert answer["error"] == "unknown_instance"


async def test_rotated_token_works_during_grace_then_401() -> None:
    clock = [0.0]
    tokens = TokenStore(grace_seconds=30, clock=lambda: clock[0])
    sink = InMemorySink()
    sink.add_instance(AGENT, INSTANCE)
    old = tokens.issue(AGENT)
    server = AgentApiServer(create_app(tokens, sink), host="127.0.0.1", port=0)
    await server.start()
    url = f"{server.url}/v1/namespaces/prod/agents/web/heartbeat"
    try:
        async with aiohttp.ClientSession() as http:
            new = tokens.rotate(AGENT)
            assert (await post(http, url, heartbeat_body(), auth(old)))[0] == 200
            assert (await post(http, url, heartbeat_body(), auth(new)))[0] == 200
            clock[0] = 31.0
            status, body = await post(http, url, heartbeat_body(), auth(old))
            assert (status, body["error"]) == (401, "invalid_token")
            assert (await post(http, url, heartbeat_body(), auth(new)))[0] == 200
    finally:
        await server.stop()
    assert sink.record(AGENT).heartbeat_count == 3


async def test_token_is_checked_before_the_body_is_read(api: Api, http: aiohttp.ClientSession) -> None:
    async with http.post(
        api.path("notices"), data=b"{not json", headers={"Content-Type": "application/json"}
    ) as r:
        assert r.status == 401


# ---------------------------------------------------------------------------------------- bodies


async def test_oversized_body_413(http: aiohttp.ClientSession) -> None:
    from tests.integration.agent_api.harness import serve_api

    async with serve_api(max_body_bytes=2048) as api:
        big = notice_body(raw="x" * 4000)
        status, body = await post(http, api.path("notices"), big, auth(api.token))
        assert status == 413
        assert body["error"] == "body_too_large"
        assert "2048" in body["message"]
        assert api.sink.record(AGENT).notices == {}
        # The default limit takes the largest valid report.
    async with serve_api() as api:
        biggest = hook_body(stdoutTail="o" * 4096, stderrTail="e" * 4096)
        assert (await post(http, api.path("hooks"), biggest, auth(api.token)))[0] == 202


async def test_malformed_json_400(api: Api, http: aiohttp.ClientSession) -> None:
    for data in (b'{"instanceId": ', b"", b"\xff\xfe"):
        headers = {**auth(api.token), "Content-Type": "application/json"}
        async with http.post(api.path("notices"), data=data, headers=headers) as response:
            assert response.status == 400, data
            body = await response.json()
        assert body["error"] == "invalid_json"
        assert "JSON" in body["message"] or "empty" in body["message"]


async def test_wrong_media_type_415(api: Api, http: aiohttp.ClientSession) -> None:
    headers = {**auth(api.token), "Content-Type": "text/plain"}
    async with http.post(api.path("notices"), data=json.dumps(notice_body()), headers=headers) as response:
        assert response.status == 415
        assert "text/plain" in (await response.json())["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (notice_body(instanceId="i-NOPE"), "instanceId"),
        (notice_body(kind="earthquake"), "kind"),
        (notice_body(action=None), "body"),  # interruption without an action: a whole-body rule
        (notice_body(noticeTime="yesterday"), "noticeTime"),
        (notice_body(extra=1), "extra"),
        (notice_body(raw="r" * 20000), "raw"),
        ([notice_body()], "body"),
    ],
)
async def test_schema_errors_422_name_the_field(
    api: Api, http: aiohttp.ClientSession, body: Any, field: str
) -> None:
    status, answer = await post(http, api.path("notices"), body, auth(api.token))
    assert status == 422
    assert answer["error"] == "validation_failed"
    assert field in [e["field"] for e in answer["errors"]]
    assert field in answer["message"]
    assert api.sink.record(AGENT).notices == {}


async def test_heartbeat_schema_error(api: Api, http: aiohttp.ClientSession) -> None:
    status, answer = await post(
        http, api.path("heartbeat"), heartbeat_body(syncProgress=300), auth(api.token)
    )
    assert status == 422
    assert answer["errors"][0]["field"] == "syncProgress"


async def test_unknown_instance_404_and_nothing_changes(api: Api, http: aiohttp.ClientSession) -> None:
    before = notice_count("interruption", "false")
    for kind, body in (
        ("notices", notice_body(instanceId="i-00000000000000000")),
        ("heartbeat", heartbeat_body(instanceId="i-00000000000000000")),
        ("hooks", hook_body(instanceId="i-00000000000000000")),
    ):
        status, answer = await post(http, api.path(kind), body, auth(api.token))
        assert status == 404, kind
        assert answer["error"] == "unknown_instance"
        assert "i-00000000000000000" in answer["message"]
    record = api.sink.record(AGENT)
    assert record.notices == {}
    assert record.heartbeats == {}
    assert record.hooks == {}
    assert notice_count("interruption", "false") == before


async def test_unknown_route_404_and_wrong_method_405(api: Api, http: aiohttp.ClientSession) -> None:
    async with http.get(api.path("notices"), headers=auth(api.token)) as response:
        assert response.status == 405
        assert "POST" in response.headers["Allow"]
        assert (await response.json())["error"] == "method_not_allowed"
    async with http.post(f"{api.url}/v1/elsewhere", json={}, headers=auth(api.token)) as response:
        assert response.status == 404
        assert (await response.json())["error"] == "not_found"


async def test_notice_answer_does_not_wait_for_other_work(api: Api, http: aiohttp.ClientSession) -> None:
    """Heartbeats hammering the API do not hold a notice up: all answered, the notice accepted once."""
    beats = [
        post(http, api.path("heartbeat"), heartbeat_body(idempotencyKey=f"beat-{i:010d}"), auth(api.token))
        for i in range(50)
    ]
    results = await asyncio.gather(*beats, post(http, api.path("notices"), notice_body(), auth(api.token)))
    assert all(status in (200, 202) for status, _ in results)
    assert results[-1][1]["status"] == "accepted"
    assert api.sink.record(AGENT).heartbeat_count == 50
