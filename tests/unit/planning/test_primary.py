"""First launch and the one-primary invariant: zero -> launch or fail over, two -> retire the zombie."""

from __future__ import annotations

from spot_operator.api import Capacity, ReplicaPhase, SpotAgentPhase, TargetKind
from spot_operator.planning import LaunchInstance, MoveTraffic, OpenSwitch, Role, SetRole, TerminateInstance

from .builders import EIP, inst, market, of, replica, run, spec, view


def test_first_launch_goes_to_the_cheapest_eligible_spot_pool_with_on_demand_last() -> None:
    p = run(view())
    (launch,) = of(p, LaunchInstance)
    assert launch.key == "primary/1" and launch.role is Role.PRIMARY and launch.epoch == 1
    assert str(launch.candidates[0]) == "m5a.large.us-east-1a"  # 0.030, the cheapest
    assert [c.lifecycle for c in launch.candidates][-1] is Capacity.ON_DEMAND
    assert all(c.is_spot for c in launch.candidates[:4])
    assert p.status.phase is SpotAgentPhase.PENDING


def test_first_launch_on_on_demand_capacity_uses_only_on_demand_pools() -> None:
    p = run(view(spec(capacity="on-demand", mode="off")))
    (launch,) = of(p, LaunchInstance)
    assert launch.candidates and all(not c.is_spot for c in launch.candidates)


def test_first_launch_without_on_demand_fallback_has_no_on_demand_candidate() -> None:
    p = run(view(spec(policy={"onDemandFallback": False})))
    (launch,) = of(p, LaunchInstance)
    assert all(c.is_spot for c in launch.candidates)


def test_ineligible_risky_pools_are_not_first_choices() -> None:
    risky = market(risks={"m5a.large.us-east-1a": 0.6})
    (launch,) = of(run(view(), risky), LaunchInstance)
    assert str(launch.candidates[0]) != "m5a.large.us-east-1a"
    assert "m5a.large.us-east-1a" not in [str(c) for c in launch.candidates]


def test_a_pending_primary_is_not_launched_again_nor_given_traffic() -> None:
    from spot_operator.planning import InstanceState

    p = run(view(instances=(inst("i-1", state=InstanceState.PENDING, healthy=False, age=10),)))
    assert p.actions == ()
    assert p.status.phase is SpotAgentPhase.LAUNCHING


def test_a_healthy_primary_that_does_not_serve_gets_the_traffic() -> None:
    p = run(view(instances=(inst("i-1"),), serving=None))
    (move,) = of(p, MoveTraffic)
    assert move.to_instance == "i-1"


def test_an_unhealthy_primary_does_not_get_the_traffic_yet() -> None:
    p = run(view(instances=(inst("i-1", healthy=False),), serving=None))
    assert of(p, MoveTraffic) == []
    assert p.status.phase is SpotAgentPhase.DEGRADED


def test_steady_state_is_idle_and_ready() -> None:
    p = run(view(instances=(inst("i-1"),), serving="i-1"))
    assert p.actions == ()
    assert p.status.phase is SpotAgentPhase.READY
    assert p.status.primary is not None and p.status.primary.instance_id == "i-1"
    assert p.status.savings is not None and p.status.savings.percent > 60


def test_without_traffic_config_no_traffic_is_moved() -> None:
    p = run(view(spec(traffic={"elasticIpAllocationId": None}), instances=(inst("i-1"),)))
    assert p.actions == ()


def test_two_primaries_keep_the_higher_epoch_and_retire_the_other() -> None:
    p = run(
        view(
            instances=(inst("i-old", epoch=1), inst("i-new", epoch=2, pool="m5.large.us-east-1b")),
            serving="i-new",
        )
    )
    (role,) = of(p, SetRole)
    assert (role.instance_id, role.role) == ("i-old", Role.RETIRING)
    assert of(p, TerminateInstance) == []  # retired first; drained later


def test_two_primaries_move_traffic_to_the_kept_one_before_retiring_the_one_that_serves() -> None:
    p = run(
        view(
            instances=(inst("i-old", epoch=1), inst("i-new", epoch=2, pool="m5.large.us-east-1b")),
            serving="i-old",
        )
    )
    assert [a.to_instance for a in of(p, MoveTraffic)] == ["i-new"]
    assert of(p, SetRole) == []  # never retire (let alone terminate) what still serves


def test_a_running_primary_beats_a_pending_one_with_a_higher_epoch() -> None:
    from spot_operator.planning import InstanceState

    p = run(
        view(
            instances=(inst("i-run", epoch=1), inst("i-pend", epoch=2, state=InstanceState.PENDING)),
            serving="i-run",
        )
    )
    (role,) = of(p, SetRole)
    assert role.instance_id == "i-pend" and role.role is Role.RETIRING


def test_lost_primary_with_a_ready_replica_fails_over_onto_it() -> None:
    v = view(
        instances=(
            inst("i-rep", role=Role.REPLICA, purpose="replica/web-standby-1", pool="m5.large.us-east-1b"),
        ),
        replicas=(replica("web-standby-1", ReplicaPhase.READY, instance_id="i-rep"),),
        last_primary_id="i-gone",
        serving="i-gone",
    )
    p = run(v)
    (opened,) = of(p, OpenSwitch)
    assert opened.target.kind is TargetKind.REPLICA and opened.target.replica_ref == "web-standby-1"
    assert opened.name == "web-failover-i-gone"
    # the same plan already promotes it and moves the traffic
    assert [(a.instance_id, a.role) for a in of(p, SetRole)] == [("i-rep", Role.PRIMARY)]
    assert [a.to_instance for a in of(p, MoveTraffic)] == ["i-rep"]


def test_lost_primary_without_replica_launches_a_replacement_on_on_demand_first() -> None:
    p = run(view(last_primary_id="i-gone"))
    (opened,) = of(p, OpenSwitch)
    assert opened.target.kind is TargetKind.ON_DEMAND
    (launch,) = of(p, LaunchInstance)
    assert not launch.candidates[0].is_spot and launch.emergency
    assert any(c.is_spot for c in launch.candidates)  # spot remains a fallback if on-demand has none


def test_traffic_target_is_the_configured_elastic_ip() -> None:
    assert spec().traffic.elastic_ip_allocation_id == EIP
