from __future__ import annotations

from datetime import UTC, datetime, timedelta

from spot_agent.protocol import Health, HeartbeatReport, InstanceAction, NoticeKind, NoticeReport
from spot_operator.agent_api.convert import to_heartbeat, to_notice
from spot_operator.planning.model import Notice
from spot_operator.planning.model import NoticeKind as PlanKind

RECEIVED = datetime(2024, 5, 1, 12, 0, 5, tzinfo=UTC)
IID = "i-0123456789abcdef0"


def report(kind: NoticeKind, **over: object) -> NoticeReport:
    fields: dict[str, object] = {
        "instance_id": IID,
        "kind": kind,
        "notice_time": RECEIVED - timedelta(seconds=5),
        "idempotency_key": "k" * 16,
    }
    fields.update(over)
    return NoticeReport.model_validate(fields)


def test_interruption() -> None:
    deadline = RECEIVED + timedelta(seconds=115)
    notice = to_notice(
        report(NoticeKind.INTERRUPTION, action=InstanceAction.STOP, deadline=deadline), RECEIVED
    )
    assert notice == Notice(IID, PlanKind.INTERRUPTION, RECEIVED, deadline, "agent")
    assert notice.emergency


def test_interruption_without_deadline_gets_two_minutes() -> None:
    notice = to_notice(report(NoticeKind.INTERRUPTION, action=InstanceAction.TERMINATE), RECEIVED)
    assert notice.deadline == RECEIVED + timedelta(minutes=2)


def test_rebalance_and_maintenance() -> None:
    rebalance = to_notice(report(NoticeKind.REBALANCE), RECEIVED)
    assert rebalance.kind is PlanKind.REBALANCE
    assert rebalance.deadline is None
    assert not rebalance.emergency
    when = RECEIVED + timedelta(days=7)
    maintenance = to_notice(
        report(NoticeKind.MAINTENANCE, deadline=when, event_id="instance-event-1"), RECEIVED
    )
    assert maintenance.kind is PlanKind.MAINTENANCE
    assert maintenance.deadline == when
    assert maintenance.received_at == RECEIVED  # the operator's clock, not the agent's


def test_every_wire_kind_has_a_planner_kind() -> None:
    assert {k.value for k in NoticeKind} <= {k.value for k in PlanKind}


def test_heartbeat_uses_the_operators_clock_and_counts_degraded_as_healthy() -> None:
    def beat(health: Health) -> HeartbeatReport:
        return HeartbeatReport(
            instance_id=IID,
            agent_version="0.1.0",
            health=health,
            sync_progress=70,
            sent_at=RECEIVED - timedelta(hours=3),
            idempotency_key="k" * 16,
        )

    ok = to_heartbeat(beat(Health.OK), RECEIVED)
    assert ok.at == RECEIVED
    assert ok.sync_progress == 70
    assert ok.healthy
    assert to_heartbeat(beat(Health.DEGRADED), RECEIVED).healthy
    assert not to_heartbeat(beat(Health.FAILING), RECEIVED).healthy
