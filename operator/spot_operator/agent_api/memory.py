"""An in-memory AgentSink for tests, the sandbox and the demo. It follows the operator's rules: a notice
is a duplicate when the agent already has one for the same instance and kind (as AgentState.add_notice),
heartbeats older than the newest are ignored, hook results are kept once per idempotency key."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from spot_agent.protocol import HeartbeatReport, HookReport, NoticeReport
from spot_operator.agent_api.convert import to_notice
from spot_operator.agent_api.sink import NoticeOutcome
from spot_operator.planning.model import Notice, NoticeKind


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class AgentRecord:
    instances: set[str] = field(default_factory=set)
    heartbeats: dict[str, HeartbeatReport] = field(default_factory=dict)  # instance -> newest
    heartbeat_count: int = 0
    notices: dict[tuple[str, NoticeKind], Notice] = field(default_factory=dict)
    notice_reports: list[NoticeReport] = field(default_factory=list)  # accepted, in order
    duplicates: int = 0
    hooks: dict[str, HookReport] = field(default_factory=dict)  # idempotency key -> report


class InMemorySink:
    def __init__(self, clock: Callable[[], datetime] = utc_now) -> None:
        self._clock = clock
        self.agents: dict[str, AgentRecord] = defaultdict(AgentRecord)
        self._changed = asyncio.Condition()

    def add_instance(self, agent_key: str, instance_id: str) -> None:
        self.agents[agent_key].instances.add(instance_id)

    def remove_instance(self, agent_key: str, instance_id: str) -> None:
        self.agents[agent_key].instances.discard(instance_id)

    def record(self, agent_key: str) -> AgentRecord:
        return self.agents[agent_key]

    # ----------------------------------------------------------------------------------- AgentSink

    def instance_known(self, agent_key: str, instance_id: str) -> bool:
        record = self.agents.get(agent_key)
        return record is not None and instance_id in record.instances

    async def heartbeat(self, agent_key: str, report: HeartbeatReport) -> None:
        record = self.agents[agent_key]
        record.heartbeat_count += 1
        newest = record.heartbeats.get(report.instance_id)
        if newest is None or report.sent_at >= newest.sent_at:
            record.heartbeats[report.instance_id] = report
        await self._notify()

    async def notice(self, agent_key: str, report: NoticeReport) -> NoticeOutcome:
        record = self.agents[agent_key]
        notice = to_notice(report, self._clock())
        key = (notice.instance_id, notice.kind)
        if key in record.notices:
            record.duplicates += 1
            await self._notify()
            return "duplicate"
        record.notices[key] = notice
        record.notice_reports.append(report)
        await self._notify()
        return "accepted"

    async def hook_result(self, agent_key: str, report: HookReport) -> None:
        self.agents[agent_key].hooks.setdefault(report.idempotency_key, report)
        await self._notify()

    # ------------------------------------------------------------------------------------- waiting

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], bool], seconds: float = 10.0) -> None:
        """Wait until ``predicate()`` holds; TimeoutError naming the wait if it does not in time."""
        deadline = time.monotonic() + seconds
        async with self._changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"the sink did not reach the expected state within {seconds:g} s")
                try:
                    await asyncio.wait_for(self._changed.wait(), remaining)
                except TimeoutError:
                    continue
