"""The Operator context over in-memory ports: notice intake, dedup, routing, heartbeats, requeues."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from spot_operator.planning import Notice, NoticeKind, Role
from spot_operator.ports import LaunchOutcome, LaunchRequest, QueueMessage
from spot_operator.runtime.loops import NoticeCycle, observe_cycle
from spot_operator.state import Heartbeat
from tests.fakes.operator import (
    EIP,
    ListQueue,
    agent_body,
    flaky_operator,
    make_operator,
    settle_with_heartbeats,
)


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


async def test_a_replacement_whose_agent_reports_in_takes_over_before_the_next_describe() -> None:
    """Without a standby a notice launches a replacement; its agent's first heartbeat shows it runs, so
    the cutover does not wait for an observe cycle to see it leave ``pending``."""
    op, clock, ec2, traffic = make_operator(boot_seconds=40)
    state = op.upsert_agent(agent_body(mode="auto-switch"))
    await settle_with_heartbeats(op, clock, state.key, rounds=12)
    (old,) = ec2.live("uid-web")
    assert traffic.pointing[EIP] == old.instance_id and state.status.phase.value == "Ready"
    describes = len(ec2.calls_of("describe_owned"))

    assert op.submit_notice(Notice(old.instance_id, NoticeKind.INTERRUPTION, clock.now(), None, "agent"))
    await op.settle()
    (new,) = [i for i in state.instances.values() if i.instance_id != old.instance_id]
    assert state.instances[new.instance_id].state.value == "pending"  # as RunInstances answered
    clock.advance(30)  # booted; no describe has run since the launch
    assert op.record_heartbeat(state.key, new.instance_id, Heartbeat(clock.now()))
    await op.settle()
    assert len(ec2.calls_of("describe_owned")) == describes
    assert traffic.pointing[EIP] == new.instance_id
    assert state.status.primary is not None and state.status.primary.instance_id == new.instance_id


async def test_a_heartbeat_from_before_the_launch_does_not_make_an_instance_running() -> None:
    op, clock, *_ = make_operator(boot_seconds=40)
    state = op.upsert_agent(agent_body(mode="auto-switch"))
    await observe_cycle(op)
    await op.settle()
    (inst,) = state.instances.values()
    early = Heartbeat(inst.launched_at - timedelta(seconds=1))
    assert op.record_heartbeat(state.key, inst.instance_id, early)
    assert state.view().instances[0].state.value == "pending"
    assert op.record_heartbeat(state.key, inst.instance_id, Heartbeat(clock.now()))
    assert state.view().instances[0].state.value == "running"


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


async def test_a_notice_is_acknowledged_only_once_a_status_write_holds_it() -> None:
    op, clock, ec2, _, objects = flaky_operator()
    state = op.upsert_agent(agent_body(mode="auto-switch"))
    await settle_with_heartbeats(op, clock, state.key)
    primary = next(i for i in ec2.live("uid-web") if i.role is Role.PRIMARY)
    notice = Notice(primary.instance_id, NoticeKind.REBALANCE, clock.now(), None, "agent")
    assert op.submit_notice(notice) == "accepted"
    assert not state.notice_written(primary.instance_id, NoticeKind.REBALANCE)

    written = asyncio.create_task(op.notice_written(notice, wait_seconds=5))
    await asyncio.sleep(0)
    assert not written.done()  # nothing written yet: an answer now could be lost with the process
    await op.settle()
    assert await written
    stored = objects.statuses[("SpotAgent", "default", "web")]["pendingNotices"]
    assert [(n["instanceId"], n["kind"]) for n in stored] == [(primary.instance_id, "rebalance")]


async def test_a_notice_is_written_and_acknowledged_while_its_failover_launch_is_still_in_flight() -> None:
    """The sender is answered after one status write, not after the AWS calls of the failover (which may
    queue behind a burst): the launch below stays blocked until the notice is acknowledged."""
    op, clock, ec2, _, objects = flaky_operator()
    state = op.upsert_agent(agent_body(mode="auto-switch"))
    await settle_with_heartbeats(op, clock, state.key)
    (primary,) = ec2.live("uid-web")
    gate = asyncio.Event()
    launch = ec2.launch

    async def slow_launch(request: LaunchRequest) -> LaunchOutcome:
        await gate.wait()
        return await launch(request)

    ec2.launch = slow_launch  # type: ignore[method-assign]
    notice = Notice(primary.instance_id, NoticeKind.INTERRUPTION, clock.now(), None, "agent")
    assert op.submit_notice(notice) == "accepted"
    assert await op.notice_written(notice, wait_seconds=2)
    stored = objects.statuses[("SpotAgent", "default", "web")]["pendingNotices"]
    assert [(n["instanceId"], n["kind"]) for n in stored] == [(primary.instance_id, "interruption")]
    assert len(ec2.live("uid-web")) == 1 and not gate.is_set()  # the replacement is not launched yet

    gate.set()
    await op.settle()
    assert len(ec2.live("uid-web")) == 2  # the failover went on; its outcome is written at the end
    written = objects.statuses[("SpotAgent", "default", "web")]
    assert [s.spec.reason.value for s in state.switches.values()] == ["emergency"]
    assert written == state.status.to_wire()


async def test_with_status_writes_failing_the_failover_runs_but_the_notice_is_not_acknowledged() -> None:
    op, clock, ec2, traffic, objects = flaky_operator()
    state = op.upsert_agent(agent_body())
    await settle_with_heartbeats(op, clock, state.key)
    primary = next(i for i in ec2.live("uid-web") if i.role is Role.PRIMARY)
    standby = next(i for i in ec2.live("uid-web") if i.role is Role.REPLICA)
    objects.down = True
    notice = Notice(primary.instance_id, NoticeKind.INTERRUPTION, clock.now(), None, "agent")
    assert op.submit_notice(notice) == "accepted"
    assert not await op.notice_written(notice, wait_seconds=0.2)
    assert traffic.pointing[EIP] == standby.instance_id  # emergencies act, whatever the API server does

    objects.down = False
    op.kick(state.key)
    assert await op.notice_written(notice, wait_seconds=5)
    status = objects.statuses[("SpotAgent", "default", "web")]
    assert status["primary"]["instanceId"] == standby.instance_id  # type: ignore[index]


async def test_sqs_messages_are_deleted_only_once_their_notices_are_written() -> None:
    op, clock, ec2, _, objects = flaky_operator()
    state = op.upsert_agent(agent_body())
    await settle_with_heartbeats(op, clock, state.key)
    primary = next(i for i in ec2.live("uid-web") if i.role is Role.PRIMARY)
    notice = Notice(primary.instance_id, NoticeKind.INTERRUPTION, clock.now(), None, "sqs")
    unknown = Notice("i-0000000000000dead", NoticeKind.INTERRUPTION, clock.now(), None, "sqs")
    queue = ListQueue(
        [QueueMessage("r-ours", notice), QueueMessage("r-stranger", unknown), QueueMessage("r-junk", None)]
    )
    cycle = NoticeCycle(queue, write_wait_seconds=0.2)  # type: ignore[arg-type]

    objects.down = True
    assert await cycle(op) == 1
    assert queue.deleted == ["r-junk", "r-stranger"]  # nothing to act on: gone at once
    assert [m.receipt for m in queue.messages] == ["r-ours"]  # kept: SQS delivers it again

    objects.down = False
    assert await cycle(op) == 0  # the copy is a duplicate of what is in memory ...
    assert queue.messages == []  # ... and is deleted once the status holds it
    assert len([s for s in state.switches.values() if s.spec.reason.value == "emergency"]) == 1
