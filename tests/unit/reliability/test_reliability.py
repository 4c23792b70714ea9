"""The reliability suite's fast subset: crashes at sampled steps, AWS faults, duplicates and disorder.

Each case drives one flow of the real planner, actuator and reconciler in memory and fails with the
invariant that broke. The full set: ``make reliability``.
"""

from __future__ import annotations

import pytest

from spot_operator.api.switchrequest import SwitchPhase
from spot_operator.errors import Throttled, Transient
from spot_operator.inmemory import InMemoryEc2
from spot_operator.planning import NoticeKind
from spot_operator.simulation.faults import Fault, When
from spot_operator.simulation.reliability import (
    FLOW,
    Config,
    Flow,
    Harness,
    _fault_setup,
    run,
    run_flow,
    scenarios,
)

CASES = [(s, label, case) for s in scenarios() for label, case in s.cases(False)]


@pytest.mark.parametrize(
    ("name", "label", "case"),
    [(s.name, label, case) for s, label, case in CASES],
    ids=[f"{s.name}: {label}" for s, label, _ in CASES],
)
def test_fast_subset_keeps_the_invariants(name: str, label: str, case: object) -> None:
    result = run(case())  # type: ignore[operator]
    assert result.ok, result.problems


# -- regressions for what the suite found ------------------------------------------------------------
def test_a_throttled_launch_is_retried_not_failed() -> None:
    result = run(
        run_flow(FLOW["pool switch"], setup=_fault_setup(Fault("launch", lambda: Throttled("slow down"), 2)))
    )
    assert result.ok, result.problems


def test_a_requested_switch_gives_up_after_repeated_throttling() -> None:
    flow = FLOW["pool switch"]

    async def go() -> Harness:
        h = Harness(flow.config)
        await h.start()
        h.injector.faults = [Fault("launch", lambda: Throttled("slow down"), 100)]
        await flow.trigger(h)
        await h.settle(lambda: h.switch("to-pool") is SwitchPhase.FAILED, max_seconds=900)
        return h

    h = _loop(go())
    sw = h.world.agent("web").switches["to-pool"]
    assert sw.status.phase is SwitchPhase.FAILED
    assert [c.reason for c in sw.status.conditions if c.type == "Complete"] == [
        "Throttled"
    ] or sw.status.message


def test_every_crash_point_of_a_replica_promotion_completes_it() -> None:
    flow = FLOW["replica promotion"]
    clean = run(run_flow(flow))
    for k in range(clean.calls):
        result = run(run_flow(flow, k, max_launches=clean.launched))
        assert result.ok, (k, result.problems)


def test_rebalance_with_the_interruption_launches_once() -> None:
    async def trigger(h: Harness) -> object:
        old = h.primary or ""
        h.notice(old, NoticeKind.INTERRUPTION)
        h.notice(old, NoticeKind.REBALANCE)
        return lambda h: [] if h.primary != old else ["not moved"]

    result = run(run_flow(Flow("both", Config(), trigger), max_launches=1))  # type: ignore[arg-type]
    assert result.ok, result.problems


def test_target_groups_follow_when_a_move_fails_half_way() -> None:
    fault = Fault("move_traffic", lambda: Transient("target group"), 2, When.HALF)
    result = run(run_flow(FLOW["pool switch"], setup=_fault_setup(fault), config=Config(target_groups=True)))
    assert result.ok, result.problems


# -- the checks bite -------------------------------------------------------------------------------------
def test_an_ec2_that_does_not_terminate_is_caught_leaking(monkeypatch: pytest.MonkeyPatch) -> None:
    async def ignore(self: InMemoryEc2, region: str, instance_ids: object) -> None:
        return None

    monkeypatch.setattr(InMemoryEc2, "terminate", ignore)
    result = run(run_flow(FLOW["pool switch"]))
    assert any(p.startswith("leaked") for p in result.problems), result.problems
    assert result.lost >= 1


def test_a_lost_traffic_move_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    fault = Fault("move_traffic", lambda: Transient("target group"), 1, When.HALF)
    monkeypatch.setattr("spot_operator.state.AgentState.observed_serving", lambda self, eip: eip)
    result = run(run_flow(FLOW["pool switch"], setup=_fault_setup(fault), config=Config(target_groups=True)))
    assert any("target groups point at" in p for p in result.problems), result.problems


def _loop(coro: object) -> Harness:
    import asyncio

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)  # type: ignore[arg-type]
    finally:
        loop.close()
