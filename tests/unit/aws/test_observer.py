"""The observe cycle over the in-memory ports: one describe and one serving per region, folded per agent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from spot_operator.api import SpotAgentSpec
from spot_operator.errors import Throttled
from spot_operator.inmemory import FixedClock, InMemoryEc2, InMemoryTraffic
from spot_operator.planning.model import Instance, InstanceState, Pool, Role
from spot_operator.ports import AgentRef, LaunchRequest, LaunchSpec, ObservedInstance, TrafficTarget
from spot_operator.runtime.observer import group_by_owner, observe_once, serving_after
from spot_operator.state import AgentState

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
REGIONS = ("us-east-1", "us-west-2", "eu-west-1")


def agent(n: int, region: str, traffic: dict[str, Any] | None = None) -> AgentState:
    spec = SpotAgentSpec.model_validate(
        {
            "region": region,
            "image": "ami-0123456789abcdef0",
            "instanceTypes": ["m5.large"],
            "traffic": traffic if traffic is not None else {"elasticIpAllocationId": f"eipalloc-{n:017x}"},
        }
    )
    return AgentState(AgentRef("default", f"a{n}", f"uid-{n}"), spec, created_at=NOW)


async def launch(ec2: InMemoryEc2, state: AgentState) -> Instance:
    region = state.spec.region
    outcome = await ec2.launch(
        LaunchRequest(
            owner=state.ref.uid,
            agent=state.key,
            key="primary/1",
            client_token=f"tok-{state.ref.uid}",
            candidates=(Pool("m5.large", f"{region}a"),),
            role=Role.PRIMARY,
            launch=LaunchSpec(region=region),
        )
    )
    return outcome.instance


async def test_one_describe_and_one_serving_per_region_for_many_agents() -> None:
    clock = FixedClock(NOW)
    ec2, traffic = InMemoryEc2(clock), InMemoryTraffic()
    agents = {}
    for n in range(60):
        state = agent(n, REGIONS[n % 3])
        agents[state.key] = state
        inst = await launch(ec2, state)
        await traffic.move(state.traffic, inst.instance_id, None)
    ec2.reset_calls()
    stats = await observe_once(ec2, traffic, agents, NOW)
    assert len(ec2.calls_of("describe_owned")) == 3
    assert len([c for c in traffic.calls if c[0] == "serving"]) == 3
    assert (stats.regions, stats.agents, stats.instances, stats.describe_calls, stats.serving_calls) == (
        3,
        60,
        60,
        3,
        3,
    )
    assert stats.errors == ()
    for state in agents.values():
        [inst] = state.instances.values()
        assert state.serving == inst.instance_id
        assert inst.pool.zone.startswith(state.spec.region)


async def test_traffic_kinds_fold_differently() -> None:
    clock = FixedClock(NOW)
    ec2, traffic = InMemoryEc2(clock), InMemoryTraffic()
    eip = agent(1, "us-east-1")
    tg_only = agent(
        2,
        "us-east-1",
        {
            "targetGroupArns": [
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"
            ]
        },
    )
    none = agent(3, "us-east-1", {})
    for state in (eip, tg_only, none):
        await launch(ec2, state)
    tg_only.serving = "i-moved-by-us"
    none.serving = "i-stale"
    agents = {s.key: s for s in (eip, tg_only, none)}
    stats = await observe_once(ec2, traffic, agents, NOW)
    assert eip.serving is None  # the Elastic IP points nowhere yet
    assert tg_only.serving == "i-moved-by-us"
    assert none.serving is None
    assert stats.serving_calls == 1


async def test_a_failing_region_keeps_its_agents_and_is_reported() -> None:
    clock = FixedClock(NOW)
    ec2, traffic = InMemoryEc2(clock), InMemoryTraffic()
    east, west = agent(1, "us-east-1"), agent(2, "us-west-2")
    known = Instance(
        "i-known",
        Pool("m5.large", "us-east-1a"),
        Role.PRIMARY,
        InstanceState.RUNNING,
        NOW - timedelta(hours=1),
    )
    east.instances = {"i-known": known}
    launched = await launch(ec2, west)
    # Regions start in the agents' order, so the first describe call (the one that fails) is us-east-1's.
    ec2.next_error("describe_owned", Throttled("slow down", "RequestLimitExceeded"))
    stats = await observe_once(ec2, traffic, {east.key: east, west.key: west}, NOW)
    assert len(stats.errors) == 1
    assert stats.errors[0].startswith("us-east-1: RequestLimitExceeded")
    assert east.instances == {"i-known": known}  # kept, not emptied by the failed describe
    assert list(west.instances) == [launched.instance_id]


def test_group_by_owner_and_serving_after() -> None:
    a = Instance("i-2", Pool("m5.large", "us-east-1a"), Role.PRIMARY, InstanceState.RUNNING, NOW)
    b = Instance("i-1", Pool("m5.large", "us-east-1a"), Role.REPLICA, InstanceState.RUNNING, NOW)
    grouped = group_by_owner(
        [ObservedInstance("u", "ns/a", "us-east-1", a), ObservedInstance("u", "ns/a", "us-east-1", b)]
    )
    assert [i.instance_id for i in grouped["u"]] == ["i-1", "i-2"]
    state = agent(9, "us-east-1")
    assert serving_after(state, {state.traffic.elastic_ip_allocation_id or "": "i-9"}) == "i-9"
    assert TrafficTarget.from_spec(state.spec).elastic_ip_allocation_id is not None


def _inst(instance_id: str, role: Role, epoch: int, state: InstanceState) -> Instance:
    return Instance(
        instance_id=instance_id,
        pool=Pool("m5.large", "us-east-1a"),
        state=state,
        role=role,
        launched_at=NOW - timedelta(hours=1),
        epoch=epoch,
    )


def test_a_describe_older_than_our_last_action_does_not_undo_it() -> None:
    """A promotion re-tags the standby while a describe is under way: the describe shows the old roles.
    Taken as is, the agent would have no primary and fail over again, onto the next standby."""
    state = agent(1, "us-east-1")
    state.instances = {
        "i-old": _inst("i-old", Role.RETIRING, 1, InstanceState.SHUTTING_DOWN),
        "i-new": _inst("i-new", Role.PRIMARY, 2, InstanceState.RUNNING),
    }
    state.changed_at = NOW + timedelta(seconds=1)  # the promotion finished after the describe began
    described = [
        _inst("i-old", Role.PRIMARY, 1, InstanceState.RUNNING),
        _inst("i-new", Role.REPLICA, 0, InstanceState.RUNNING),
    ]
    assert state.observe(described, NOW) is True
    assert state.instances["i-new"].role is Role.PRIMARY and state.instances["i-new"].epoch == 2
    assert state.instances["i-old"].role is Role.RETIRING
    assert state.instances["i-old"].state is InstanceState.SHUTTING_DOWN  # never moved back

    # A describe that began after the action is the truth, whatever memory says.
    later = NOW + timedelta(seconds=30)
    gone = [_inst("i-old", Role.RETIRING, 1, InstanceState.TERMINATED), described[1]]
    assert state.observe(gone, later) is False
    assert state.instances["i-new"].role is Role.REPLICA
    assert state.instances["i-old"].state is InstanceState.TERMINATED
