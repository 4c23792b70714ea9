"""The Operator context over in-memory ports: notice intake, dedup, routing, heartbeats, requeues."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from spot_operator.inmemory import FixedClock, InMemoryEc2, InMemoryObjects, InMemoryTraffic
from spot_operator.planning import Notice, NoticeKind, Pool, Role
from spot_operator.ports import PriceObservation
from spot_operator.runtime.loops import observe_cycle
from spot_operator.runtime.operator import Operator
from spot_operator.state import Heartbeat

START = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
EIP = "eipalloc-0123456789abcdef0"
PRICES = {"m5.large.us-east-1a": 0.04, "m5.large.us-east-1b": 0.035, "m5a.large.us-east-1a": 0.03}


def agent_body(name: str = "web", mode: str = "manual-replica", uid: str = "uid-web") -> dict[str, Any]:
    return {
        "apiVersion": "spotoptimizer.io/v1alpha1",
        "kind": "SpotAgent",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": uid,
            "generation": 1,
            "creationTimestamp": START.isoformat(),
        },
        "spec": {
            "region": "us-east-1",
            "launchTemplate": {"name": "web"},
            "instanceTypes": ["m5.large", "m5a.large"],
            "zones": ["us-east-1a", "us-east-1b"],
            "mode": mode,
            "traffic": {"elasticIpAllocationId": EIP},
        },
    }


def make_operator() -> tuple[Operator, FixedClock, InMemoryEc2, InMemoryTraffic]:
    clock = FixedClock(START)
    ec2, traffic = InMemoryEc2(clock), InMemoryTraffic()
    op = Operator(ec2, traffic, InMemoryObjects(clock), now=clock.now)
    op.book.add_spot(PriceObservation(Pool.parse(n), START, p) for n, p in PRICES.items())
    op.book.on_demand["us-east-1"] = {"m5.large": 0.096, "m5a.large": 0.086}
    return op, clock, ec2, traffic


async def settle_with_heartbeats(op: Operator, clock: FixedClock, key: str, rounds: int = 6) -> None:
    """Reconcile, let every running instance's agent report in, and repeat."""
    for _ in range(rounds):
        await observe_cycle(op)
        await op.reconcile(key)
        for inst in list(op.agents[key].instances.values()):
            if inst.live:
                op.record_heartbeat(key, inst.instance_id, Heartbeat(clock.now()))
        await op.settle()
        clock.advance(5)


async def test_a_manual_replica_agent_gets_a_primary_with_the_traffic_and_a_ready_standby() -> None:
    op, clock, ec2, traffic = make_operator()
    state = op.upsert_agent(agent_body())
    await settle_with_heartbeats(op, clock, state.key)
    live = ec2.live("uid-web")
    primaries = [i for i in live if i.role is Role.PRIMARY]
    assert len(primaries) == 1 and len(live) == 2
    assert traffic.pointing[EIP] == primaries[0].instance_id
    assert state.status.phase.value == "Ready"
    assert [r.phase.value for r in state.replicas.values() if r.phase] == ["Ready"]


async def test_nothing_is_planned_for_an_agent_before_ec2_was_described_for_it() -> None:
    """After a restart, what an earlier process launched is unknown until the first observation."""
    op, clock, ec2, _ = make_operator()
    state = op.upsert_agent(agent_body())
    assert await op.reconcile(state.key) is None
    assert op.observe_wanted.is_set() and ec2.calls == []
    await observe_cycle(op)
    assert state.observed_at == clock.now()
    await op.settle()  # the observation kicked the agent: its first plan launches primary and standby
    assert sorted(i.role.value for i in ec2.live("uid-web")) == ["primary", "replica"]


async def test_a_notice_is_acted_on_at_once_and_its_duplicate_is_recognised() -> None:
    op, clock, ec2, traffic = make_operator()
    state = op.upsert_agent(agent_body())
    await settle_with_heartbeats(op, clock, state.key)
    primary = next(i for i in ec2.live("uid-web") if i.role is Role.PRIMARY)
    standby = next(i for i in ec2.live("uid-web") if i.role is Role.REPLICA)
    notice = Notice(primary.instance_id, NoticeKind.INTERRUPTION, clock.now(), None, "agent")
    assert op.submit_notice(notice) == "accepted"
    again = Notice(primary.instance_id, NoticeKind.INTERRUPTION, clock.now(), None, "sqs")
    assert op.submit_notice(again) == "duplicate"
    await op.settle()
    assert traffic.pointing[EIP] == standby.instance_id
    failovers = [s for s in state.switches.values() if s.spec.reason.value == "emergency"]
    assert len(failovers) == 1
    assert traffic.moves[EIP] == 2  # the first placement and the failover: no third move
    # the interrupted pool is avoided for a while
    assert primary.pool in op.unavailable.current(clock.now())


async def test_a_copy_arriving_after_the_failover_is_still_a_duplicate() -> None:
    """SQS re-delivers minutes later, after the failover answered the notice and forgot it."""
    op, clock, ec2, _ = make_operator()
    state = op.upsert_agent(agent_body())
    await settle_with_heartbeats(op, clock, state.key)
    primary = next(i for i in ec2.live("uid-web") if i.role is Role.PRIMARY)
    recorded: list[Notice] = []
    op.on_notice = lambda _state, notice: recorded.append(notice)
    assert op.submit_notice(Notice(primary.instance_id, NoticeKind.INTERRUPTION, clock.now(), None, "agent"))
    await settle_with_heartbeats(op, clock, state.key)
    ec2.reclaim(primary.instance_id)  # the two minutes are up
    await settle_with_heartbeats(op, clock, state.key)
    assert not state.notices  # answered and forgotten
    late = Notice(primary.instance_id, NoticeKind.INTERRUPTION, clock.now(), None, "sqs")
    assert op.submit_notice(late) == "duplicate"
    assert len(recorded) == 1
    assert len([s for s in state.switches.values() if s.spec.reason.value == "emergency"]) == 1


async def test_a_notice_for_an_unknown_instance_changes_nothing() -> None:
    op, clock, ec2, traffic = make_operator()
    state = op.upsert_agent(agent_body())
    await settle_with_heartbeats(op, clock, state.key)
    calls = len(ec2.calls)
    moves = dict(traffic.moves)
    unknown = Notice("i-0000000000000dead", NoticeKind.INTERRUPTION, clock.now(), None, "sqs")
    assert op.submit_notice(unknown) == "unknown"
    assert op.submit_notice(unknown, agent_key=state.key) == "unknown"
    await op.settle()
    assert len(ec2.calls) == calls and traffic.moves == moves and not state.notices


async def test_routing_finds_the_agent_of_an_instance_among_many() -> None:
    op, *_ = make_operator()
    keys = []
    for n in range(5):
        state = op.upsert_agent(agent_body(f"web{n}", mode="off", uid=f"uid-{n}"))
        keys.append(state.key)
    await observe_cycle(op)
    for key in keys:
        await op.reconcile(key)
    assert all(op.agents[key].instances for key in keys)
    for key in keys:
        for instance_id in op.agents[key].instances:
            assert op.route(instance_id) == key
    assert op.route("i-0000000000000dead") is None


async def test_a_spec_change_reaches_the_next_plan() -> None:
    op, clock, ec2, _ = make_operator()
    state = op.upsert_agent(agent_body())
    await settle_with_heartbeats(op, clock, state.key)
    body = agent_body(mode="off")
    body["metadata"]["generation"] = 2
    op.upsert_agent(body)
    await settle_with_heartbeats(op, clock, state.key, rounds=2)
    assert state.generation == 2 and state.status.observed_generation == 2
    assert [i.role for i in ec2.live("uid-web")] == [Role.PRIMARY]  # mode off keeps no standby


async def test_an_invalid_spec_is_refused_with_the_field_named() -> None:
    import pytest

    from spot_operator.runtime.operator import InvalidSpec

    op, *_ = make_operator()
    body = agent_body()
    body["spec"]["instanceTypes"] = []
    with pytest.raises(InvalidSpec, match="instanceTypes"):
        op.upsert_agent(body)
