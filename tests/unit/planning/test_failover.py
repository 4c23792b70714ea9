"""Notices: the 2-minute interruption, rebalance recommendations, duplicates and stale notices."""

from __future__ import annotations

from spot_operator.api import Capacity, ReplicaPhase, ReplicaReason, SpotAgentPhase, SwitchPhase, TargetKind
from spot_operator.planning import (
    CreateReplica,
    ForgetNotice,
    LaunchInstance,
    MoveTraffic,
    NoticeKind,
    OpenSwitch,
    Role,
    SetRole,
    TerminateInstance,
)

from .builders import inst, market, notice, of, replica, run, spec, switch, view

PRIMARY = inst("i-p", pool="m5a.large.us-east-1a", epoch=3)
STANDBY = inst("i-r", pool="m5.large.us-east-1b", role=Role.REPLICA, purpose="replica/web-standby-1")
READY = replica("web-standby-1", ReplicaPhase.READY, instance_id="i-r")


def test_interruption_with_a_ready_replica_promotes_it_and_moves_traffic_in_one_plan() -> None:
    p = run(
        view(
            spec(mode="manual-replica"),
            instances=(PRIMARY, STANDBY),
            replicas=(READY,),
            serving="i-p",
            notices=(notice("i-p"),),
        )
    )
    (opened,) = of(p, OpenSwitch)
    assert opened.target.replica_ref == "web-standby-1"
    assert [(a.instance_id, a.role, a.epoch) for a in of(p, SetRole)] == [("i-r", Role.PRIMARY, 4)]
    assert [(a.to_instance, a.from_instance) for a in of(p, MoveTraffic)] == [("i-r", "i-p")]
    assert of(p, LaunchInstance) == []
    assert p.switch_status[opened.name].phase is SwitchPhase.CUTTING_OVER
    assert p.status.phase is SpotAgentPhase.FAILING_OVER


def test_interruption_acts_even_in_mode_off_and_when_paused() -> None:
    for agent_spec in (spec(mode="off"), spec(paused=True), spec(mode="manual-replica", paused=True)):
        p = run(view(agent_spec, instances=(PRIMARY,), serving="i-p", notices=(notice("i-p"),)))
        assert len(of(p, OpenSwitch)) == 1 and len(of(p, LaunchInstance)) == 1, agent_spec


def test_interruption_without_replica_launches_in_another_spot_pool_when_fallback_is_off() -> None:
    p = run(
        view(
            spec(policy={"onDemandFallback": False}),
            instances=(PRIMARY,),
            serving="i-p",
            notices=(notice("i-p"),),
        )
    )
    (opened,) = of(p, OpenSwitch)
    assert opened.target.kind is TargetKind.CHEAPEST
    (launch,) = of(p, LaunchInstance)
    assert launch.candidates[0].is_spot and str(launch.candidates[0]) != "m5a.large.us-east-1a"
    assert "m5a.large.us-east-1a" not in [str(c) for c in launch.candidates if c.is_spot]
    assert launch.candidates[-1].lifecycle is Capacity.ON_DEMAND  # never end with no primary


def test_every_spot_pool_out_of_capacity_means_on_demand() -> None:
    full = market(unavailable=("m5.large.us-east-1a", "m5.large.us-east-1b", "m5a.large.us-east-1b"))
    p = run(
        view(
            spec(policy={"onDemandFallback": False}),
            instances=(PRIMARY,),
            serving="i-p",
            notices=(notice("i-p"),),
        ),
        full,
    )
    (launch,) = of(p, LaunchInstance)
    assert launch.candidates and all(c.lifecycle is Capacity.ON_DEMAND for c in launch.candidates)


def test_the_same_notice_from_agent_and_sqs_opens_one_switch() -> None:
    p = run(view(instances=(PRIMARY,), serving="i-p", notices=(notice("i-p"), notice("i-p", source="sqs"))))
    assert len(of(p, OpenSwitch)) == 1 and len(of(p, LaunchInstance)) == 1


def test_a_notice_already_answered_by_a_switch_opens_nothing_new() -> None:
    running = switch(
        "web-failover-i-p",
        {"kind": "on-demand"},
        reason="emergency",
        managed=True,
        status={"phase": "Launching", "startedAt": "2026-03-01T11:59:50Z", "oldInstanceId": "i-p"},
    )
    p = run(view(instances=(PRIMARY,), serving="i-p", notices=(notice("i-p"),), switches=(running,)))
    assert of(p, OpenSwitch) == []
    assert len(of(p, LaunchInstance)) == 1  # the existing switch (re)issues its keyed launch


def test_a_notice_for_an_instance_that_is_gone_is_forgotten() -> None:
    from spot_operator.planning import InstanceState

    dead = inst("i-x", role=Role.RETIRING, state=InstanceState.TERMINATED)
    p = run(view(instances=(PRIMARY, dead), serving="i-p", notices=(notice("i-x"), notice("i-unknown"))))
    assert sorted(a.notice.instance_id for a in of(p, ForgetNotice)) == ["i-unknown", "i-x"]
    assert of(p, OpenSwitch) == [] and of(p, LaunchInstance) == []


def test_rebalance_in_auto_switch_creates_a_replica_in_another_pool() -> None:
    p = run(view(instances=(PRIMARY,), serving="i-p", notices=(notice("i-p", NoticeKind.REBALANCE),)))
    (created,) = of(p, CreateReplica)
    assert created.reason is ReplicaReason.REBALANCE and created.name == "web-rebalance-i-p"
    assert of(p, OpenSwitch) == []
    cond = {c.type: c for c in p.status.conditions}["InterruptionPending"]
    assert cond.status.value == "True" and cond.reason == "Rebalance"


def test_rebalance_replica_launches_in_the_safest_other_pool() -> None:
    risks = {"m5.large.us-east-1b": 0.01, "m5.large.us-east-1a": 0.2, "m5a.large.us-east-1b": 0.1}
    rep = replica("web-rebalance-i-p", reason=ReplicaReason.REBALANCE, age=1)
    p = run(
        view(
            instances=(PRIMARY,),
            serving="i-p",
            replicas=(rep,),
            notices=(notice("i-p", NoticeKind.REBALANCE),),
        ),
        market(risks=risks),
    )
    (launch,) = of(p, LaunchInstance)
    assert str(launch.candidates[0]) == "m5.large.us-east-1b"
    assert all(c.name != "m5a.large.us-east-1a" for c in launch.candidates)


def test_ready_rebalance_replica_is_moved_onto_when_policy_says_replace() -> None:
    rep_inst = inst("i-r", pool="m5.large.us-east-1b", role=Role.REPLICA, purpose="replica/web-rebalance-i-p")
    rep = replica("web-rebalance-i-p", ReplicaPhase.READY, ReplicaReason.REBALANCE, instance_id="i-r")
    v = view(
        instances=(PRIMARY, rep_inst),
        serving="i-p",
        replicas=(rep,),
        notices=(notice("i-p", NoticeKind.REBALANCE),),
    )
    (opened,) = of(run(v), OpenSwitch)
    assert opened.target.replica_ref == "web-rebalance-i-p" and opened.priority == 90
    standby = view(
        spec(policy={"rebalanceAction": "standby"}),
        instances=(PRIMARY, rep_inst),
        serving="i-p",
        replicas=(rep,),
        notices=(notice("i-p", NoticeKind.REBALANCE),),
    )
    assert of(run(standby), OpenSwitch) == []


def test_rebalance_in_manual_replica_or_off_creates_no_extra_replica() -> None:
    for mode in ("manual-replica", "off"):
        p = run(
            view(
                spec(mode=mode),
                instances=(PRIMARY, STANDBY),
                replicas=(READY,),
                serving="i-p",
                notices=(notice("i-p", NoticeKind.REBALANCE),),
            )
        )
        assert [a for a in of(p, CreateReplica) if a.reason is ReplicaReason.REBALANCE] == []


def test_interruption_of_a_standby_fails_it_and_terminates_it() -> None:
    p = run(
        view(
            spec(mode="manual-replica"),
            instances=(PRIMARY, STANDBY),
            replicas=(READY,),
            serving="i-p",
            notices=(notice("i-r"),),
        )
    )
    assert [a.instance_id for a in of(p, TerminateInstance)] == ["i-r"]
    assert p.replica_status["web-standby-1"].phase is ReplicaPhase.FAILED
    assert len(of(p, CreateReplica)) == 1  # manual-replica keeps exactly one standby


def test_failover_onto_a_standby_that_is_itself_interrupted_is_not_attempted() -> None:
    p = run(
        view(
            spec(mode="manual-replica"),
            instances=(PRIMARY, STANDBY),
            replicas=(READY,),
            serving="i-p",
            notices=(notice("i-p"), notice("i-r")),
        )
    )
    (opened,) = of(p, OpenSwitch)
    assert opened.target.kind is not TargetKind.REPLICA
