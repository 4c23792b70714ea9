"""The agent API's sink: agent reports go straight into the Operator's memory."""

from __future__ import annotations

import logging

from spot_agent.protocol import HeartbeatReport, HookReport, NoticeReport
from spot_operator.agent_api.convert import to_heartbeat, to_notice
from spot_operator.agent_api.sink import NoticeOutcome
from spot_operator.runtime.operator import Operator

log = logging.getLogger(__name__)


class OperatorSink:
    """Implements :class:`spot_operator.agent_api.sink.AgentSink`."""

    def __init__(self, operator: Operator) -> None:
        self.op = operator

    def instance_known(self, agent_key: str, instance_id: str) -> bool:
        state = self.op.agents.get(agent_key)
        return state is not None and instance_id in state.instances

    async def heartbeat(self, agent_key: str, report: HeartbeatReport) -> None:
        self.op.record_heartbeat(agent_key, report.instance_id, to_heartbeat(report, self.op.now()))

    async def notice(self, agent_key: str, report: NoticeReport) -> NoticeOutcome:
        outcome = self.op.submit_notice(to_notice(report, self.op.now()), agent_key)
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
