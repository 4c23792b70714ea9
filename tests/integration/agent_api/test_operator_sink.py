"""The agent API over the real operator: a notice is answered 202 only once a restart cannot lose it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from spot_operator.agent_api import AgentApiServer, TokenStore, create_app
from spot_operator.planning import Role
from spot_operator.runtime.agent_sink import OperatorSink
from tests.fakes.operator import EIP, agent_body, flaky_operator, settle_with_heartbeats


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_a_notice_that_cannot_be_written_gets_503_and_its_retry_202(
    http: aiohttp.ClientSession,
) -> None:
    op, clock, ec2, traffic, objects = flaky_operator()
    state = op.upsert_agent(agent_body())  # manual-replica: a standby to fail over to
    await settle_with_heartbeats(op, clock, state.key)
    primary = next(i for i in ec2.live("uid-web") if i.role is Role.PRIMARY)
    standby = next(i for i in ec2.live("uid-web") if i.role is Role.REPLICA)
    tokens = TokenStore()
    server = AgentApiServer(
        create_app(tokens, OperatorSink(op, write_wait_seconds=0.3)), host="127.0.0.1", port=0
    )
    await server.start()
    try:
        url = f"{server.url}/v1/namespaces/default/agents/web/notices"
        headers = {"Authorization": f"Bearer {tokens.issue(state.key)}"}
        sent = datetime.now(UTC)
        body = {
            "instanceId": primary.instance_id,
            "kind": "interruption",
            "action": "terminate",
            "noticeTime": sent.isoformat(),
            "deadline": (sent + timedelta(minutes=2)).isoformat(),
            "raw": "{}",
            "idempotencyKey": "notice-000000001",
        }
        objects.down = True
        async with http.post(url, json=body, headers=headers) as response:
            assert response.status == 503
            assert response.headers["Retry-After"] == "1"
            answer = await response.json()
        assert answer["error"] == "not_persisted" and "send it again" in answer["message"]
        assert traffic.pointing[EIP] == standby.instance_id  # the failover did not wait for the answer

        objects.down = False
        async with http.post(url, json=body, headers=headers) as response:
            assert response.status == 202
            assert (await response.json())["status"] == "duplicate"
        stored = objects.statuses[("SpotAgent", "default", "web")]
        assert stored["primary"]["instanceId"] == standby.instance_id  # type: ignore[index]
    finally:
        await server.stop()
