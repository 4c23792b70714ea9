"""The SwitchRequest phase machine: transitions, validation, priorities, draining."""

from __future__ import annotations

import pytest

from spot_operator.api import SwitchPhase, SwitchReason
from spot_operator.planning import (
    LaunchFailure,
    LaunchInstance,
    MoveTraffic,
    NoticeKind,
    Role,
    SetRole,
    TerminateInstance,
)
from spot_operator.planning.switching import TRANSITIONS, IllegalTransition, transition

from .builders import NOW, ago, inst, later, notice, of, run, spec, switch, view

P = SwitchPhase
PRIMARY = inst("i-p", pool="m5a.large.us-east-1a", epoch=2)


def test_the_table_lets_nothing_leave_a_final_phase_and_nothing_abort_a_cutover() -> None:
    for final in (P.COMPLETED, P.FAILED, P.SUPERSEDED):
        assert TRANSITIONS[final] == frozenset()
    assert P.SUPERSEDED not in TRANSITIONS[P.CUTTING_OVER] | TRANSITIONS[P.DRAINING]
    assert set(TRANSITIONS) == set(SwitchPhase)
    from spot_operator.api import SwitchRequestStatus

    with pytest.raises(IllegalTransition):
        transition(SwitchRequestStatus(phase=P.DRAINING), P.SUPERSEDED, NOW, "x", "y")


def test_switch_to_a_pool_launches_there_then_cuts_over_and_drains() -> None:
    sw = switch("move", {"kind": "pool", "pool": "m5.large.us-east-1b"})
    p = run(view(instances=(PRIMARY,), serving="i-p", switches=(sw,)))
    (launch,) = of(p, LaunchInstance)
    assert launch.key == "switch/uid-move" and [str(c) for c in launch.candidates] == ["m5.large.us-east-1b"]
    assert launch.role is Role.REPLICA and launch.purpose == "switch/move"
    launching = p.switch_status["move"]
    assert launching.phase is P.LAUNCHING and launching.old_instance_id == "i-p"

    new = inst("i-n", pool="m5.large.us-east-1b", role=Role.REPLICA, purpose="switch/move", age=60)
    sw = switch("move", {"kind": "pool", "pool": "m5.large.us-east-1b"}, status=launching.to_wire())
    p = run(view(instances=(PRIMARY, new), serving="i-p", switches=(sw,)))
    assert [(a.instance_id, a.role, a.epoch) for a in of(p, SetRole)] == [("i-n", Role.PRIMARY, 3)]
    assert [a.to_instance for a in of(p, MoveTraffic)] == ["i-n"]
    assert p.switch_status["move"].phase is P.CUTTING_OVER

    promoted = inst("i-n", pool="m5.large.us-east-1b", role=Role.PRIMARY, epoch=3, purpose="switch/move")
    sw = switch(
        "move", {"kind": "pool", "pool": "m5.large.us-east-1b"}, status=p.switch_status["move"].to_wire()
    )
    p = run(view(instances=(PRIMARY, promoted), serving="i-n", switches=(sw,)))
    assert [(a.instance_id, a.role) for a in of(p, SetRole)] == [("i-p", Role.RETIRING)]

    retired = inst("i-p", pool="m5a.large.us-east-1a", role=Role.RETIRING, epoch=2)
    p = run(view(instances=(retired, promoted), serving="i-n", switches=(sw,)))
    st = p.switch_status["move"]
    assert st.phase is P.DRAINING and st.timings is not None and st.timings.downtime_seconds == 0.0
    assert of(p, TerminateInstance) == []  # terminateWaitSeconds (30 s) not over yet
    assert p.requeue_after == pytest.approx(30.0)

    sw = switch("move", {"kind": "pool", "pool": "m5.large.us-east-1b"}, status=st.to_wire())
    p = run(view(instances=(retired, promoted), serving="i-n", switches=(sw,)), now=later(31))
    assert [a.instance_id for a in of(p, TerminateInstance)] == ["i-p"]


def test_without_auto_terminate_the_old_primary_is_left_running() -> None:
    retired = inst("i-p", role=Role.RETIRING, epoch=2)
    promoted = inst("i-n", pool="m5.large.us-east-1b", epoch=3, purpose="switch/move")
    status = {
        "phase": "Draining",
        "oldInstanceId": "i-p",
        "newInstanceId": "i-n",
        "cutoverAt": ago(600).isoformat(),
    }
    sw = switch("move", {"kind": "pool", "pool": "m5.large.us-east-1b"}, status=status)
    p = run(
        view(
            spec(termination={"autoTerminate": False}),
            instances=(retired, promoted),
            serving="i-n",
            switches=(sw,),
        )
    )
    assert of(p, TerminateInstance) == []
    assert p.switch_status["move"].phase is P.COMPLETED


def test_a_pool_outside_the_candidates_fails_with_a_reason_and_launches_nothing() -> None:
    for target in ("c5.large.us-east-1a", "m5.large.us-east-1c", "m5.large.us-west-2a"):
        sw = switch("bad", {"kind": "pool", "pool": target})
        p = run(view(instances=(PRIMARY,), serving="i-p", switches=(sw,)))
        st = p.switch_status["bad"]
        assert st.phase is P.FAILED and target in st.message
        assert st.conditions[0].reason == "InvalidTarget"
        assert of(p, LaunchInstance) == []


def test_a_switch_to_where_the_primary_already_is_completes_at_once() -> None:
    p = run(
        view(
            instances=(PRIMARY,),
            serving="i-p",
            switches=(switch("same", {"kind": "pool", "pool": "m5a.large.us-east-1a"}),),
        )
    )
    assert p.switch_status["same"].phase is P.COMPLETED and p.actions == ()


def test_on_demand_target_defaults_to_the_primarys_type_and_zone() -> None:
    p = run(view(instances=(PRIMARY,), serving="i-p", switches=(switch("od", {"kind": "on-demand"}),)))
    (launch,) = of(p, LaunchInstance)
    assert str(launch.candidates[0]) == "m5a.large.us-east-1a/on-demand"


def test_cheapest_target_never_picks_the_current_pool() -> None:
    p = run(view(instances=(PRIMARY,), serving="i-p", switches=(switch("c", {"kind": "cheapest"}),)))
    (launch,) = of(p, LaunchInstance)
    assert str(launch.candidates[0]) == "m5.large.us-east-1b"
    assert "m5a.large.us-east-1a" not in map(str, launch.candidates)


def test_higher_priority_wins_and_the_other_is_superseded() -> None:
    decision = switch("d", {"kind": "pool", "pool": "m5.large.us-east-1a"}, SwitchReason.DECISION, age=20)
    manual = switch("m", {"kind": "pool", "pool": "m5.large.us-east-1b"}, SwitchReason.MANUAL, age=5)
    p = run(view(instances=(PRIMARY,), serving="i-p", switches=(decision, manual)))
    assert p.switch_status["d"].phase is P.SUPERSEDED and "m" in p.switch_status["d"].message
    assert [a.purpose for a in of(p, LaunchInstance)] == ["switch/m"]


def test_equal_priority_keeps_the_older_one() -> None:
    first = switch("a", {"kind": "pool", "pool": "m5.large.us-east-1a"}, age=20)
    second = switch("b", {"kind": "pool", "pool": "m5.large.us-east-1b"}, age=5)
    p = run(view(instances=(PRIMARY,), serving="i-p", switches=(second, first)))
    assert p.switch_status["b"].phase is P.SUPERSEDED
    assert p.switch_status["a"].phase is P.LAUNCHING


def test_a_switch_already_launching_carries_the_failover_instead_of_a_second_launch() -> None:
    status = {"phase": "Launching", "startedAt": ago(30).isoformat(), "oldInstanceId": "i-p"}
    manual = switch("m", {"kind": "pool", "pool": "m5.large.us-east-1b"}, status=status, age=30)
    launching = inst(
        "i-m", pool="m5.large.us-east-1b", role=Role.REPLICA, purpose="switch/m", healthy=False, age=20
    )
    p = run(view(instances=(PRIMARY, launching), serving="i-p", switches=(manual,), notices=(notice("i-p"),)))
    # the launching switch already carries the primary away: no second switch, it simply continues
    assert p.switch_status.get("m") is None or p.switch_status["m"].phase is P.LAUNCHING
    assert of(p, TerminateInstance) == []


def test_a_pending_manual_switch_is_superseded_by_an_emergency() -> None:
    manual = switch("m", {"kind": "pool", "pool": "m5.large.us-east-1b"}, age=30)
    p = run(
        view(
            spec(paused=True),
            instances=(PRIMARY,),
            serving="i-p",
            switches=(manual,),
            notices=(notice("i-p"),),
        )
    )
    assert p.switch_status["m"].phase is P.SUPERSEDED
    assert len(of(p, LaunchInstance)) == 1


def test_a_higher_priority_switch_waits_for_a_cutover_in_progress() -> None:
    promoted = inst("i-n", pool="m5.large.us-east-1b", epoch=3, purpose="switch/d")
    status = {
        "phase": "CuttingOver",
        "oldInstanceId": "i-p",
        "newInstanceId": "i-n",
        "readyAt": ago(2).isoformat(),
    }
    cutting = switch(
        "d", {"kind": "pool", "pool": "m5.large.us-east-1b"}, SwitchReason.DECISION, status=status
    )
    manual = switch("m", {"kind": "on-demand"}, age=1)
    p = run(view(instances=(PRIMARY, promoted), serving="i-n", switches=(cutting, manual)))
    assert p.switch_status["m"].phase is P.PENDING and "waiting for d" in p.switch_status["m"].message
    assert [(a.instance_id, a.role) for a in of(p, SetRole)] == [("i-p", Role.RETIRING)]


def test_paused_agents_hold_planned_switches() -> None:
    p = run(
        view(
            spec(paused=True),
            instances=(PRIMARY,),
            serving="i-p",
            switches=(switch("m", {"kind": "cheapest"}),),
        )
    )
    assert p.actions == () and "paused" in p.switch_status["m"].message


def test_a_failed_launch_fails_a_planned_switch_with_the_reason() -> None:
    status = {"phase": "Launching", "startedAt": ago(30).isoformat(), "oldInstanceId": "i-p"}
    sw = switch("m", {"kind": "pool", "pool": "m5.large.us-east-1b"}, status=status)
    failure = LaunchFailure("InsufficientCapacity", "no capacity in m5.large.us-east-1b", ago(1))
    p = run(
        view(instances=(PRIMARY,), serving="i-p", switches=(sw,), launch_failures={"switch/uid-m": failure})
    )
    assert p.switch_status["m"].phase is P.FAILED and "no capacity" in p.switch_status["m"].message
    assert of(p, LaunchInstance) == []


def test_an_emergency_launch_failure_is_retried_after_a_backoff_with_a_new_attempt() -> None:
    status = {"phase": "Launching", "startedAt": ago(30).isoformat(), "oldInstanceId": "i-p"}
    sw = switch(
        "web-failover-i-p", {"kind": "on-demand"}, SwitchReason.EMERGENCY, status=status, managed=True
    )
    failure = LaunchFailure("InsufficientCapacity", "none", ago(1), attempts=1)
    v = view(
        instances=(PRIMARY,),
        serving="i-p",
        switches=(sw,),
        launch_failures={"switch/web-failover-i-p": failure},
        notices=(notice("i-p"),),
    )
    p = run(v)
    assert of(p, LaunchInstance) == [] and p.requeue_after is not None
    (launch,) = of(run(v, now=later(15)), LaunchInstance)
    assert launch.attempt == 1


def test_the_boot_timeout_counts_from_the_launch_not_from_the_switchs_start() -> None:
    """20 minutes of refused launches, then one goes through: the new instance gets its full time."""
    status = {"phase": "Launching", "startedAt": ago(1300).isoformat(), "oldInstanceId": "i-p"}
    sw = switch("m", {"kind": "pool", "pool": "m5.large.us-east-1b"}, status=status)
    booting = inst(
        "i-n", pool="m5.large.us-east-1b", role=Role.REPLICA, purpose="switch/m", age=10, healthy=False
    )
    p = run(view(instances=(PRIMARY, booting), serving="i-p", switches=(sw,)))
    assert p.switch_status["m"].phase is P.LAUNCHING and of(p, TerminateInstance) == []

    stuck = inst(
        "i-n", pool="m5.large.us-east-1b", role=Role.REPLICA, purpose="switch/m", age=901, healthy=False
    )
    p = run(view(instances=(PRIMARY, stuck), serving="i-p", switches=(sw,)))
    assert p.switch_status["m"].phase is P.FAILED
    assert [c.reason for c in p.switch_status["m"].conditions if c.type == "Complete"] == ["LaunchTimeout"]
    assert [a.instance_id for a in of(p, TerminateInstance)] == ["i-n"]


def test_a_new_instance_interrupted_before_cutover_fails_the_switch() -> None:
    status = {"phase": "Launching", "startedAt": ago(30).isoformat(), "oldInstanceId": "i-p"}
    sw = switch("m", {"kind": "pool", "pool": "m5.large.us-east-1b"}, status=status)
    new = inst("i-n", pool="m5.large.us-east-1b", role=Role.REPLICA, purpose="switch/m", age=20)
    p = run(view(instances=(PRIMARY, new), serving="i-p", switches=(sw,), notices=(notice("i-n"),)))
    assert p.switch_status["m"].phase is P.FAILED
    assert [a.instance_id for a in of(p, TerminateInstance)] == ["i-n"]


def test_draining_is_cut_short_by_the_old_primarys_interruption_deadline() -> None:
    retired = inst("i-p", role=Role.RETIRING, epoch=2)
    promoted = inst("i-n", pool="m5.large.us-east-1b", epoch=3, purpose="switch/x")
    status = {
        "phase": "Draining",
        "oldInstanceId": "i-p",
        "newInstanceId": "i-n",
        "cutoverAt": NOW.isoformat(),
    }
    sw = switch("x", {"kind": "cheapest"}, status=status)
    deadline_soon = notice("i-p", NoticeKind.INTERRUPTION)
    p = run(
        view(
            spec(termination={"terminateWaitSeconds": 600}),
            instances=(retired, promoted),
            serving="i-n",
            switches=(sw,),
            notices=(deadline_soon,),
        )
    )
    assert p.requeue_after == pytest.approx(120.0)
