"""The agent end to end: the IMDS emulator on one side, a real agent API server with the in-memory sink
on the other, the spool on disk in between."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spot_agent.config import AgentConfig, HookConfig
from spot_agent.daemon import Agent, assemble, read_identity
from spot_agent.imds import TOKEN_PATH, ImdsClient
from spot_agent.protocol import Health, InstanceAction, NoticeKind
from spot_agent.reporter import Courier
from spot_agent.spool import Spool
from spot_operator.planning.model import NoticeKind as PlanKind
from tests.fakes.imds import ImdsEmulator
from tests.integration.agent_api.harness import AGENT, INSTANCE, OTHER_AGENT, Api, serve_api


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def configure(tmp_path: Path, imds: ImdsEmulator, operator_url: str, token: str, **over: Any) -> AgentConfig:
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    settings: dict[str, Any] = {
        "operator_url": operator_url,
        "namespace": "prod",
        "name": "web",
        "token_file": token_file,
        "imds_endpoint": imds.url,
        "imds_timeout_seconds": 1.0,
        "poll_interval_seconds": 1.0,
        "heartbeat_interval_seconds": 1.0,
        "request_timeout_seconds": 2.0,
        "retry_initial_seconds": 0.05,
        "retry_max_seconds": 0.3,
        "spool_dir": tmp_path / "spool",
    }
    settings.update(over)
    return AgentConfig.model_validate(settings)


@dataclass
class Running:
    agent: Agent
    spool: Spool
    courier: Courier
    stop: asyncio.Event
    task: asyncio.Task[None]


@asynccontextmanager
async def running(config: AgentConfig) -> AsyncIterator[Running]:
    imds = ImdsClient(config.imds_endpoint, timeout_seconds=config.imds_timeout_seconds)
    identity = await asyncio.to_thread(read_identity, imds)
    agent, spool = assemble(config, imds, identity)
    assert spool is not None
    assert agent.courier is not None
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        yield Running(agent, spool, agent.courier, stop, task)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        spool.close()


async def eventually(predicate: Any, seconds: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not reached in time")
        await asyncio.sleep(0.05)


async def test_rebalance_then_interruption_reported_once_each(
    tmp_path: Path, imds: ImdsEmulator, api: Api
) -> None:
    config = configure(tmp_path, imds, api.url, api.token)
    record = api.sink.record(AGENT)
    async with running(config) as run:
        await api.sink.wait_for(lambda: record.heartbeat_count >= 1)
        imds.schedule_rebalance()
        await api.sink.wait_for(lambda: (INSTANCE, PlanKind.REBALANCE) in record.notices)
        imds.schedule_interruption(after_seconds=1, action="stop")
        await api.sink.wait_for(lambda: (INSTANCE, PlanKind.INTERRUPTION) in record.notices)
        polls = run.agent.poller.polls
        await eventually(lambda: run.agent.poller.polls >= polls + 3)  # both events still showing
        await eventually(lambda: len(run.spool) == 0)
    kinds = [r.kind for r in record.notice_reports]
    assert kinds == [NoticeKind.REBALANCE, NoticeKind.INTERRUPTION]
    assert record.duplicates == 0  # each sent once, not once per poll
    interruption = record.notice_reports[1]
    assert interruption.action is InstanceAction.STOP
    assert interruption.deadline is not None
    beat = record.heartbeats[INSTANCE]
    assert beat.health is Health.OK
    assert beat.agent_version == "0.1.0"


async def test_imds_401_gets_a_new_token(tmp_path: Path, imds: ImdsEmulator, api: Api) -> None:
    config = configure(tmp_path, imds, api.url, api.token)
    record = api.sink.record(AGENT)
    async with running(config):
        await api.sink.wait_for(lambda: record.heartbeat_count >= 1)
        imds.expire_tokens()
        imds.schedule_interruption()
        await api.sink.wait_for(lambda: (INSTANCE, PlanKind.INTERRUPTION) in record.notices)
    assert [r for r in imds.requests if r.status == 401]
    assert imds.count(TOKEN_PATH, 200) >= 2


async def test_operator_down_spool_delivers_when_back_nothing_lost(
    tmp_path: Path, imds: ImdsEmulator
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # The operator is down: the agent polls, spools, retries.
    async with serve_api(port=port) as probe:
        token = probe.tokens.issue(AGENT)  # any token; the real one is made below
    config = configure(tmp_path, imds, url, token)
    imds.schedule_rebalance()
    async with running(config) as run:
        await eventually(lambda: any(e.kind == "notice" for e in run.spool.pending()))
        imds.schedule_interruption()
        await eventually(
            lambda: sum(e.kind == "notice" for e in run.spool.pending()) == 2 and run.courier.attempts >= 3
        )
        assert run.courier.delivered == 0
        hook_free = [e.kind for e in run.spool.pending()]
        assert hook_free.count("heartbeat") <= 1  # heartbeats do not pile up
    # The agent restarted meanwhile (the spool is on disk); the operator comes back on the same address.
    async with serve_api(port=port) as api:
        api.tokens.set(AGENT, token)
        record = api.sink.record(AGENT)
        async with running(config) as run:
            await api.sink.wait_for(lambda: len(record.notice_reports) == 2)
            await eventually(lambda: len(run.spool) == 0)
        kinds = [r.kind for r in record.notice_reports]
        assert kinds == [NoticeKind.REBALANCE, NoticeKind.INTERRUPTION]  # in the order they happened
        assert record.heartbeat_count >= 1
    assert not list((tmp_path / "spool").glob("*.json"))


async def test_wrong_token_is_retried_until_the_file_is_fixed(
    tmp_path: Path, imds: ImdsEmulator, api: Api
) -> None:
    config = configure(tmp_path, imds, api.url, "not-the-token")
    record = api.sink.record(AGENT)
    imds.schedule_rebalance()
    async with running(config) as run:
        await eventually(lambda: run.courier.attempts >= 3)
        assert run.courier.delivered == 0
        assert run.courier.rejected == 0  # 401 is not definitive: kept
        assert any(e.kind == "notice" for e in run.spool.pending())
        config.token_file.write_text(api.token)  # the rotated token lands on disk
        await api.sink.wait_for(lambda: (INSTANCE, PlanKind.REBALANCE) in record.notices)
        await eventually(lambda: len(run.spool) == 0)


async def test_definitive_rejection_is_dropped_and_the_rest_flows(
    tmp_path: Path, imds: ImdsEmulator, api: Api
) -> None:
    # The agent claims to be prod/db, whose instances do not include this one: 404 for every report.
    config = configure(tmp_path, imds, api.url, api.other_token, name="db")
    imds.schedule_rebalance()
    async with running(config) as run:
        await eventually(lambda: run.courier.rejected >= 2 and len(run.spool) == 0)
    assert api.sink.record(OTHER_AGENT).notices == {}
    assert api.sink.record(AGENT).notices == {}


async def test_pre_stop_hook_runs_and_is_reported(tmp_path: Path, imds: ImdsEmulator, api: Api) -> None:
    marker = tmp_path / "drained"
    code = (
        "import os, pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text(os.environ['SPOT_AGENT_NOTICE_ACTION'])\n"
        "print('drained')\n"
    )
    hooks = {
        "pre-stop": HookConfig(command=(sys.executable, "-c", code), timeout_seconds=20),
        "slow-drain": HookConfig(
            command=(sys.executable, "-c", "import time; time.sleep(30)"), timeout_seconds=1
        ),
        "on-rebalance": HookConfig(command=("/bin/true",), on=(NoticeKind.REBALANCE,)),
    }
    config = configure(tmp_path, imds, api.url, api.token, hooks=hooks)
    record = api.sink.record(AGENT)
    async with running(config):
        imds.schedule_interruption(action="terminate")
        await api.sink.wait_for(lambda: len(record.hooks) == 2, seconds=30)
    by_name = {h.hook: h for h in record.hooks.values()}
    assert set(by_name) == {"pre-stop", "slow-drain"}  # the rebalance hook had no rebalance
    assert by_name["pre-stop"].ok
    assert by_name["pre-stop"].stdout_tail == "drained\n"
    assert marker.read_text() == "terminate"
    assert by_name["slow-drain"].timed_out
    assert by_name["slow-drain"].exit_code is None
    notice_key = record.notice_reports[0].idempotency_key
    assert {h.trigger for h in by_name.values()} == {notice_key}


async def test_imds_outage_degrades_the_heartbeat(tmp_path: Path, imds: ImdsEmulator, api: Api) -> None:
    config = configure(tmp_path, imds, api.url, api.token)
    record = api.sink.record(AGENT)
    async with running(config) as run:
        await api.sink.wait_for(lambda: record.heartbeat_count >= 1)
        imds.stop()
        await eventually(lambda: bool(run.agent.poller.imds_problem))
        await api.sink.wait_for(lambda: record.heartbeats[INSTANCE].health is Health.DEGRADED)
        assert "hop limit" in record.heartbeats[INSTANCE].detail
        imds.restart()
        await eventually(lambda: not run.agent.poller.imds_problem)
        await api.sink.wait_for(lambda: record.heartbeats[INSTANCE].health is Health.OK)
