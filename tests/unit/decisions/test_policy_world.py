"""A decision carried out by the real reconciler in the in-memory World, then the calm after it."""

from __future__ import annotations

from spot_operator.api import SpotAgentSpec, SwitchReason
from spot_operator.api.switchrequest import SwitchPhase
from spot_operator.planning.decisions import Verdict, decide
from spot_operator.planning.model import Pool
from spot_operator.simulation.world import World, with_prices

from .builders import EIP, A, B, C


def _spec() -> SpotAgentSpec:
    return SpotAgentSpec.model_validate(
        {
            "region": "us-east-1",
            "image": "ami-0123456789abcdef0",
            "instanceTypes": ["m5.large"],
            "zones": ["us-east-1a", "us-east-1b", "us-east-1c"],
            "mode": "auto-switch",
            "traffic": {"elasticIpAllocationId": EIP},
            "policy": {"cooldownSeconds": 1800, "minSavingsPercent": 10},
        }
    )


async def test_a_decision_switch_lands_the_primary_in_the_chosen_pool_and_then_it_stays() -> None:
    world = with_prices(World(boot_seconds=60), {A: 0.040, B: 0.050, C: 0.060}, {A: 0.01, B: 0.01, C: 0.01})
    world.on_demand["m5.large"] = 0.096
    world.add_agent("web", _spec())
    await world.run_until(lambda: world.serving("web") is not None, max_seconds=600)
    (first,) = world.primaries("web")
    assert str(first.pool) == A

    # The market moves: B becomes much cheaper. Within the cooldown after launch nothing happens.
    world.prices[Pool.parse(B)] = 0.020
    state = world.agent("web")
    world.observe()
    held = decide(state.view(), world.market_for(state), world.clock.now())
    assert (held.verdict, held.reason) == (Verdict.HOLD, "Cooldown")

    await world.tick(1800)
    d = decide(state.view(), world.market_for(state), world.clock.now())
    assert d.switch and str(d.target) == B
    target = d.switch_target()
    assert target is not None
    world.request_switch("web", "decision-1", target, SwitchReason.DECISION)
    await world.run_until(lambda: state.switches["decision-1"].final, max_seconds=900)
    assert state.switches["decision-1"].status.phase is SwitchPhase.COMPLETED
    (moved,) = world.primaries("web")
    assert str(moved.pool) == B and world.serving("web") == moved.instance_id

    # Right after: cooling down; once cooled down on the same market: it stays.
    world.observe()
    again = decide(state.view(), world.market_for(state), world.clock.now())
    assert (again.verdict, again.reason) == (Verdict.HOLD, "Cooldown")
    await world.tick(1801)
    calm = decide(state.view(), world.market_for(state), world.clock.now())
    assert (calm.verdict, calm.reason) == (Verdict.STAY, "CurrentIsBest")
