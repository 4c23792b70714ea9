"""The one interface between the agent API and the rest of the operator."""

from __future__ import annotations

from typing import Literal, Protocol

from spot_agent.protocol import HeartbeatReport, HookReport, NoticeReport

NoticeOutcome = Literal["accepted", "duplicate"]


class AgentSink(Protocol):
    """What the operator does with agent reports. ``agent_key`` is "<namespace>/<name>".

    ``notice`` starts acting on the notice at once and returns when the notice is durably recorded
    (a crash after the answer cannot lose it): the agent API answers 202 right after. When it cannot
    be recorded in time it raises :class:`~spot_operator.agent_api.errors.ApiError` (503): the agent
    sends it again.
    """

    def instance_known(self, agent_key: str, instance_id: str) -> bool:
        """True if the instance is one of the agent's (primary, replica, or being launched)."""
        ...

    async def heartbeat(self, agent_key: str, report: HeartbeatReport) -> None: ...

    async def notice(self, agent_key: str, report: NoticeReport) -> NoticeOutcome:
        """Record the notice; "duplicate" when the same notice (same instance and kind) is already known."""
        ...

    async def hook_result(self, agent_key: str, report: HookReport) -> None: ...
