"""Replica count per mode, each Replica's phase, cleanup of what nobody needs, and deletion."""

from __future__ import annotations

from spot_operator.api import ReplicaPhase, ReplicaReason, SpotAgentPhase
from spot_operator.planning import (
    CreateReplica,
    InstanceState,
    LaunchFailure,
    LaunchInstance,
    MoveTraffic,
    Role,
    SetRole,
    TerminateInstance,
)

from .builders import ago, inst, of, replica, run, spec, switch, view

PRIMARY = inst("i-p", pool="m5a.large.us-east-1a")


def test_manual_replica_creates_exactly_one_standby() -> None:
    p = run(view(spec(mode="manual-replica"), instances=(PRIMARY,), serving="i-p"))
    (created,) = of(p, CreateReplica)
    assert created.reason is ReplicaReason.MANUAL and created.name.startswith("web-standby-")


def test_manual_replica_with_a_standby_creates_no_other() -> None:
    rep = replica("web-standby-1", ReplicaPhase.LAUNCHING, age=5)
    p = run(view(spec(mode="manual-replica"), instances=(PRIMARY,), serving="i-p", replicas=(rep,)))
    assert of(p, CreateReplica) == []
    (launch,) = of(p, LaunchInstance)
    assert launch.purpose == "replica/web-standby-1" and launch.role is Role.REPLICA


def test_a_standby_goes_to_another_pool_preferably_another_zone() -> None:
    rep = replica("web-standby-1", age=5)
    p = run(view(spec(mode="manual-replica"), instances=(PRIMARY,), serving="i-p", replicas=(rep,)))
    (launch,) = of(p, LaunchInstance)
    assert all(c.name != "m5a.large.us-east-1a" for c in launch.candidates)
    assert launch.candidates[0].zone == "us-east-1b"


def test_two_managed_standbys_keep_the_oldest() -> None:
    old = replica("web-standby-1", ReplicaPhase.READY, instance_id="i-1", age=900)
    new = replica("web-standby-2", ReplicaPhase.LAUNCHING, age=10)
    i1 = inst("i-1", pool="m5.large.us-east-1b", role=Role.REPLICA, purpose="replica/web-standby-1")
    i2 = inst("i-2", pool="m5.large.us-east-1b", role=Role.REPLICA, purpose="replica/web-standby-2", age=10)
    p = run(
        view(spec(mode="manual-replica"), instances=(PRIMARY, i1, i2), serving="i-p", replicas=(old, new))
    )
    assert p.replica_status["web-standby-2"].phase is ReplicaPhase.TERMINATED
    assert [a.instance_id for a in of(p, TerminateInstance)] == ["i-2"]


def test_auto_switch_and_off_keep_no_managed_standby() -> None:
    rep = replica("web-standby-1", ReplicaPhase.READY, instance_id="i-r")
    standby = inst("i-r", pool="m5.large.us-east-1b", role=Role.REPLICA, purpose="replica/web-standby-1")
    for mode in ("auto-switch", "off"):
        p = run(view(spec(mode=mode), instances=(PRIMARY, standby), serving="i-p", replicas=(rep,)))
        assert p.replica_status["web-standby-1"].phase is ReplicaPhase.TERMINATED
        assert [a.instance_id for a in of(p, TerminateInstance)] == ["i-r"]
        assert of(p, CreateReplica) == []


def test_a_person_made_replica_is_kept_in_any_mode() -> None:
    rep = replica("mine", ReplicaPhase.READY, managed=False, instance_id="i-r")
    standby = inst("i-r", pool="m5.large.us-east-1b", role=Role.REPLICA, purpose="replica/mine")
    p = run(view(spec(mode="off"), instances=(PRIMARY, standby), serving="i-p", replicas=(rep,)))
    assert of(p, TerminateInstance) == []
    assert p.replica_status["mine"].phase is ReplicaPhase.READY


def test_replica_phases_follow_the_instance() -> None:
    rep = replica("r", managed=False, age=60)
    booting = inst(
        "i-r",
        pool="m5.large.us-east-1b",
        role=Role.REPLICA,
        purpose="replica/r",
        state=InstanceState.PENDING,
        healthy=False,
        age=30,
    )
    syncing = inst("i-r", pool="m5.large.us-east-1b", role=Role.REPLICA, purpose="replica/r", sync=40)
    ready = inst("i-r", pool="m5.large.us-east-1b", role=Role.REPLICA, purpose="replica/r")
    phases = [
        run(view(instances=(PRIMARY, i), serving="i-p", replicas=(rep,))).replica_status["r"]
        for i in (booting, syncing, ready)
    ]
    assert [s.phase for s in phases] == [ReplicaPhase.LAUNCHING, ReplicaPhase.SYNCING, ReplicaPhase.READY]
    assert phases[1].sync_progress == 40 and phases[2].ready_at is not None
    assert phases[2].instance_id == "i-r" and phases[2].pool == "m5.large.us-east-1b"


def test_a_replica_pinned_to_the_primarys_pool_or_outside_the_candidates_fails() -> None:
    for pool, why in (("m5a.large.us-east-1a", "primary's pool"), ("c5.large.us-east-1b", "instanceTypes")):
        rep = replica("r", managed=False, pool=pool)
        p = run(view(instances=(PRIMARY,), serving="i-p", replicas=(rep,)))
        st = p.replica_status["r"]
        assert st.phase is ReplicaPhase.FAILED and why in st.message
        assert of(p, LaunchInstance) == []


def test_a_replica_that_keeps_failing_to_launch_fails_after_the_attempt_limit() -> None:
    rep = replica("r", managed=False)
    failure = LaunchFailure("InsufficientCapacity", "none anywhere", ago(60), attempts=5)
    p = run(
        view(instances=(PRIMARY,), serving="i-p", replicas=(rep,), launch_failures={"replica/uid-r": failure})
    )
    assert p.replica_status["r"].phase is ReplicaPhase.FAILED and of(p, LaunchInstance) == []


def test_a_promoted_replica_is_marked_promoted() -> None:
    rep = replica("r", ReplicaPhase.READY, managed=False, instance_id="i-r")
    promoted = inst("i-r", pool="m5.large.us-east-1b", role=Role.PRIMARY, epoch=5, purpose="replica/r")
    p = run(view(instances=(promoted,), serving="i-r", replicas=(rep,)))
    assert p.replica_status["r"].phase is ReplicaPhase.PROMOTED


def test_orphans_are_terminated_after_a_grace_period_only() -> None:
    young = inst("i-y", pool="m5.large.us-east-1b", role=Role.REPLICA, purpose="switch/unknown", age=30)
    old = inst("i-o", pool="m5.large.us-east-1b", role=Role.REPLICA, purpose="switch/gone", age=3600)
    p = run(view(instances=(PRIMARY, young, old), serving="i-p"))
    assert [a.instance_id for a in of(p, TerminateInstance)] == ["i-o"]


def test_instances_of_finished_switches_are_terminated() -> None:
    failed = switch("f", {"kind": "cheapest"}, status={"phase": "Failed"})
    left = inst("i-f", pool="m5.large.us-east-1b", role=Role.REPLICA, purpose="switch/f", age=30)
    p = run(view(instances=(PRIMARY, left), serving="i-p", switches=(failed,)))
    assert [a.instance_id for a in of(p, TerminateInstance)] == ["i-f"]


def test_a_retired_primary_is_terminated_unless_it_serves_or_auto_terminate_is_off() -> None:
    retired = inst("i-old", pool="m5.large.us-east-1b", role=Role.RETIRING, epoch=1)
    primary = inst("i-p", pool="m5a.large.us-east-1a", epoch=2)
    assert [
        a.instance_id for a in of(run(view(instances=(primary, retired), serving="i-p")), TerminateInstance)
    ] == ["i-old"]
    serving_old = run(view(instances=(primary, retired), serving="i-old"))
    assert of(serving_old, TerminateInstance) == [] and [
        a.to_instance for a in of(serving_old, MoveTraffic)
    ] == ["i-p"]
    keep = run(view(spec(termination={"autoTerminate": False}), instances=(primary, retired), serving="i-p"))
    assert of(keep, TerminateInstance) == []


def test_deletion_terminates_everything_the_agent_launched() -> None:
    standby = inst("i-r", pool="m5.large.us-east-1b", role=Role.REPLICA, purpose="replica/r")
    p = run(view(instances=(PRIMARY, standby), serving="i-p", deleting=True))
    assert sorted(a.instance_id for a in of(p, TerminateInstance)) == ["i-p", "i-r"]
    assert not p.released and p.status.phase is SpotAgentPhase.DELETING
    gone = [inst(i.instance_id, i.pool.name, i.role, InstanceState.SHUTTING_DOWN) for i in (PRIMARY, standby)]
    assert run(view(instances=tuple(gone), deleting=True)).released


def test_deletion_with_auto_terminate_off_keeps_the_primary_and_releases() -> None:
    standby = inst("i-r", pool="m5.large.us-east-1b", role=Role.REPLICA, purpose="replica/r")
    v = view(
        spec(termination={"autoTerminate": False}), instances=(PRIMARY, standby), serving="i-p", deleting=True
    )
    assert [a.instance_id for a in of(run(v), TerminateInstance)] == ["i-r"]
    v2 = view(spec(termination={"autoTerminate": False}), instances=(PRIMARY,), serving="i-p", deleting=True)
    p = run(v2)
    assert p.released and p.actions == ()
    assert of(p, SetRole) == []
