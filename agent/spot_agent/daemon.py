"""The agent: polls IMDS, sends heartbeats, reports notices at once, runs hooks, all through one outbox.

The outbox is the spool plus its courier in normal operation, and stdout in a dry run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import uuid
from datetime import UTC, datetime
from typing import Protocol, TextIO

from spot_agent import __version__
from spot_agent.config import AgentConfig
from spot_agent.health import assess
from spot_agent.hooks import run_hook
from spot_agent.imds import Identity, ImdsClient, ImdsError
from spot_agent.poller import Poller
from spot_agent.protocol import HeartbeatReport, NoticeReport, Report, report_path
from spot_agent.reporter import Courier, Reporter
from spot_agent.spool import Spool

log = logging.getLogger(__name__)

FINAL_DRAIN_SECONDS = 3.0


class Outbox(Protocol):
    def submit(self, report: Report) -> None: ...


class SpoolOutbox:
    """Durably spool, then wake the courier: the report goes out at once if the operator answers."""

    def __init__(self, spool: Spool, courier: Courier) -> None:
        self.spool = spool
        self.courier = courier

    def submit(self, report: Report) -> None:
        self.spool.put(report)
        self.courier.wake()


class PrintOutbox:
    """Dry run: print what would be posted, one JSON object per line."""

    def __init__(self, namespace: str, name: str, stream: TextIO | None = None) -> None:
        self.namespace = namespace
        self.name = name
        self.stream = stream or sys.stdout
        self.submitted: list[Report] = []

    def submit(self, report: Report) -> None:
        self.submitted.append(report)
        line = {
            "wouldPost": report_path(self.namespace, self.name, report),
            "body": report.model_dump(mode="json", by_alias=True, exclude_none=True),
        }
        print(json.dumps(line), file=self.stream, flush=True)


def read_identity(imds: ImdsClient) -> Identity:
    identity = imds.identity()
    log.info(
        "instance identified",
        extra={"instance_id": identity.instance_id, "pool": identity.pool, "imds": imds.endpoint},
    )
    return identity


async def wait_for_identity(
    imds: ImdsClient, stop: asyncio.Event, retry_seconds: float = 2.0
) -> Identity | None:
    """Read the identity, retrying while IMDS is not there yet (early boot); None if stopped first."""
    last = ""
    while not stop.is_set():
        try:
            return await asyncio.to_thread(read_identity, imds)
        except ImdsError as exc:
            if str(exc) != last:
                log.error("cannot read the instance identity from IMDS; retrying", extra={"error": str(exc)})
                last = str(exc)
        with contextlib.suppress(TimeoutError):  # retry time: try again
            await asyncio.wait_for(stop.wait(), retry_seconds)
    return None


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        imds: ImdsClient,
        identity: Identity,
        outbox: Outbox,
        courier: Courier | None = None,
        run_hooks: bool = True,
    ) -> None:
        self.config = config
        self.identity = identity
        self.outbox = outbox
        self.courier = courier
        self.run_hooks = run_hooks
        self.poller = Poller(imds, identity.instance_id)
        self._hook_tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------------------------- reports

    async def heartbeat(self) -> HeartbeatReport:
        reading = await assess(self.config.health, self.poller.imds_problem)
        report = HeartbeatReport(
            instance_id=self.identity.instance_id,
            agent_version=__version__,
            health=reading.health,
            detail=reading.detail,
            sync_progress=reading.sync_progress,
            sent_at=datetime.now(UTC),
            idempotency_key=uuid.uuid4().hex,
        )
        self.outbox.submit(report)
        return report

    async def on_notices(self, notices: list[NoticeReport]) -> None:
        for notice in notices:
            self.outbox.submit(notice)
        for notice in notices:
            for name, hook in self.config.hooks.items():
                if notice.kind not in hook.on:
                    continue
                if not self.run_hooks:
                    log.info("dry run: would run hook", extra={"hook": name, "command": list(hook.command)})
                    continue
                task = asyncio.create_task(self._hook(name, notice))
                self._hook_tasks.add(task)
                task.add_done_callback(self._hook_tasks.discard)

    async def _hook(self, name: str, notice: NoticeReport) -> None:
        report = await run_hook(name, self.config.hooks[name], self.identity.instance_id, notice)
        self.outbox.submit(report)

    async def wait_hooks(self) -> None:
        if self._hook_tasks:
            await asyncio.gather(*self._hook_tasks)

    # ---------------------------------------------------------------------------------------- loops

    async def _heartbeats(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.heartbeat()
            with contextlib.suppress(TimeoutError):  # the interval passed: beat again
                await asyncio.wait_for(stop.wait(), self.config.heartbeat_interval_seconds)

    async def run(self, stop: asyncio.Event) -> None:
        loops = [
            self.poller.run(self.config.poll_interval_seconds, self.on_notices, stop),
            self._heartbeats(stop),
        ]
        if self.courier is not None:
            loops.append(self.courier.run(stop))
        await asyncio.gather(*loops)
        await self._shutdown()

    async def _shutdown(self) -> None:
        """Give running hooks and the spool a last moment (the instance may be going away)."""
        pending = list(self._hook_tasks)
        if pending:
            _, late = await asyncio.wait(pending, timeout=FINAL_DRAIN_SECONDS)
            for task in late:
                task.cancel()
                log.warning("hook still running at shutdown; cancelled (its result is not reported)")
        if self.courier is not None and len(self.courier.spool):
            with contextlib.suppress(TimeoutError):  # what is left is logged just below
                await asyncio.wait_for(self.courier.drain(), FINAL_DRAIN_SECONDS)
            if len(self.courier.spool):
                log.warning(
                    "reports left in the spool; sent on next start", extra={"count": len(self.courier.spool)}
                )

    async def once(self) -> bool:
        """One poll, one heartbeat, the hooks they start, one delivery pass. True if nothing is left."""
        fresh = await asyncio.to_thread(self.poller.poll_once)
        await self.on_notices(fresh)
        await self.heartbeat()
        await self.wait_hooks()
        if self.courier is None:
            return True
        return await self.courier.drain()


def assemble(
    config: AgentConfig, imds: ImdsClient, identity: Identity, dry_run: bool = False
) -> tuple[Agent, Spool | None]:
    """The agent as configured: spool, reporter and courier; or, in a dry run, stdout and no hooks.

    The caller closes the spool (it holds the spool directory's lock).
    """
    if dry_run:
        outbox = PrintOutbox(config.namespace or "<namespace>", config.name or "<name>")
        return Agent(config, imds, identity, outbox, None, run_hooks=False), None
    operator_url, namespace, name = config.require_operator()
    spool = Spool(config.spool_dir)
    reporter = Reporter(
        operator_url,
        namespace,
        name,
        config.read_token,
        timeout_seconds=config.request_timeout_seconds,
        ca_file=config.ca_file,
    )
    courier = Courier(spool, reporter, config.retry_initial_seconds, config.retry_max_seconds)
    if len(spool):
        log.info("reports waiting in the spool from before", extra={"count": len(spool)})
    return Agent(config, imds, identity, SpoolOutbox(spool, courier), courier), spool
