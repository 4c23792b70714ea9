"""The agent API's sink: agent reports go straight into the Operator's memory."""

from __future__ import annotations

import logging

from spot_agent.protocol import HeartbeatReport, HookReport, NoticeReport
from spot_operator.agent_api.convert import to_heartbeat, to_notice
from spot_operator.agent_api.errors import ApiError
from spot_operator.agent_api.sink import NoticeOutcome
from spot_operator.runtime.operator import Operator

log = logging.getLogger(__name__)


class OperatorSink:
    """Implements :class:`spot_operator.agent_api.sink.AgentSink`."""

    def __init__(self, operator: Operator, write_wait_seconds: float = 5.0) -> None:
        self.op = operator
        self.write_wait_seconds = write_wait_seconds

    def instance_known(self, agent_key: str, instance_id: str) -> bool:
        state = self.op.agents.get(agent_key)
        return state is not None and instance_id in state.instances

    async def heartbeat(self, agent_key: str, report: HeartbeatReport) -> None:
        self.op.record_heartbeat(agent_key, report.instance_id, to_heartbeat(report, self.op.now()))

    async def notice(self, agent_key: str, report: NoticeReport) -> NoticeOutcome:
        notice = to_notice(report, self.op.now())
        outcome = self.op.submit_notice(notice, agent_key)
        # The failover has started; the answer waits until a crash cannot lose the notice.
        if outcome != "unknown" and not await self.op.notice_written(
            notice, agent_key, self.write_wait_seconds
        ):
            raise ApiError(
                503,
                "not_persisted",
                f"the {report.kind.value} notice for {report.instance_id} is being acted on but could not "
                "be written to the SpotAgent's status yet; send it again",
                headers={"Retry-After": "1"},
            )
        return "duplicate" if outcome == "duplicate" else "accepted"

    async def hook_result(self, agent_key: str, report: HookReport) -> None:
        state = self.op.agents.get(agent_key)
        ok = report.exit_code == 0
        log.info(
            "hook %s on %s exited %s after %.1f s",
            report.hook,
            report.instance_id,
            report.exit_code,
            report.duration_seconds,
            extra={"agent": agent_key},
        )
        if state is not None:
            await self.op.objects.event(
                "SpotAgent",
                state.ref.namespace,
                state.ref.name,
                state.ref.uid,
                "HookSucceeded" if ok else "HookFailed",
                f"{report.hook} on {report.instance_id} exited {report.exit_code} after "
                f"{report.duration_seconds:.1f} s",
                not ok,
            )
