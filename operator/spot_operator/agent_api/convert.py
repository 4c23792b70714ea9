"""Pure conversions from the agent's reports to the planner's inputs."""

from __future__ import annotations

from datetime import datetime, timedelta

from spot_agent.protocol import Health, HeartbeatReport, NoticeReport
from spot_operator.planning.model import Notice, NoticeKind
from spot_operator.state import Heartbeat

INTERRUPTION_WARNING = timedelta(minutes=2)


def to_notice(report: NoticeReport, received_at: datetime) -> Notice:
    """The planner's Notice for an agent report received at ``received_at`` (the operator's clock).

    An interruption always has a deadline: the one reported, else two minutes after receipt (the
    warning AWS gives).
    """
    kind = NoticeKind(report.kind.value)
    deadline = report.deadline
    if deadline is None and kind is NoticeKind.INTERRUPTION:
        deadline = received_at + INTERRUPTION_WARNING
    return Notice(
        instance_id=report.instance_id,
        kind=kind,
        received_at=received_at,
        deadline=deadline,
        source="agent",
    )


def to_heartbeat(report: HeartbeatReport, received_at: datetime) -> Heartbeat:
    """Timed by the operator's clock (the agent's may be off); degraded still counts as healthy."""
    return Heartbeat(
        at=received_at,
        sync_progress=report.sync_progress,
        healthy=report.health is not Health.FAILING,
    )
