"""The decision policy for ``auto-switch`` agents: stay, or move the primary where it would cost less.

Pure: ``decide(view, market, now)`` reads the observed agent and the scored market and returns a frozen
:class:`Decision`; the caller opens the SwitchRequest (reason ``decision``) and records the decision
with the scorer's name and version.

**Expected hourly cost** of a pool = price + hazard x cost of one interruption, where the hazard
(interruptions per hour) is ``-ln(1 - risk) / horizon`` (``risk`` is the scorer's probability within the
horizon; for one hour and small risks it is the risk itself) and one interruption costs the pool's price
for ``interruption_overhead_hours`` (the replacement's overlap and the move back) plus the workload's
``policy.downtimeCostPerHour`` for ``interruption_downtime_hours``. ``minSavingsPercent`` is applied to
this expected cost, so a move to a safer pool at the same price can pay for itself too.

**Eligibility** is :func:`planning.pools.eligible`: the seeds' bands (risk below 20 %: spot is fine;
20-50 %: only when it saves more than half of on-demand; above 50 % or above ``maxInterruptionRisk``:
no), a known price, and no recent capacity refusal. A running spot primary whose own risk leaves the
bands is moved to the best eligible spot pool, or to on-demand when none is eligible and
``onDemandFallback`` allows it. A primary that fell back to on-demand returns to spot as soon as a spot
pool is eligible and the move pays.

**Hysteresis**, chosen stateless so a restarted operator decides exactly as before:

1. a relative margin: the saving must be at least ``max(minSavingsPercent, hysteresis_percent)`` of the
   current expected cost;
2. payback: the hourly saving times the expected stay in the target (``1 / hazard``, at most
   ``max_payback_hours``) must cover the one-off cost of the move (the new instance billed while the old
   one still serves, and the cutover's downtime);
3. ``cooldownSeconds`` since the last decision/manual switch or the primary's launch, whichever is later.

On a constant market the pool chosen is then the cheapest eligible one, so nothing beats it by a margin
and the agent moves at most once; a market oscillating by less than the margin moves nobody; larger
swings move the agent at most once per cooldown. Requiring the margin for N consecutive cycles instead
would only keep the agent N cycles longer on the pool it should leave, and bounds nothing the cooldown
does not already bound.

The policy does not decide (``hold``) while the agent is deleted, not in ``auto-switch``, paused, moving
(a SwitchRequest not yet final), answering a notice or a rebalance replica, without one healthy
primary that serves, or within the cooldown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from spot_operator.api import Capacity, Mode, ReplicaReason, SwitchTarget, TargetKind
from spot_operator.api.spotagent import Policy
from spot_operator.planning.facts import Facts
from spot_operator.planning.model import AgentView, Market, PlannerSettings, Pool
from spot_operator.planning.pools import (
    EXPECTED_DOWNTIME_HOURS,
    HIGH_RISK,
    HIGH_RISK_MIN_SAVINGS,
    INTERRUPTION_OVERHEAD_HOURS,
    LOW_RISK,
    candidate_pools,
    eligible,
    in_candidates,
    on_demand_candidates,
    savings_fraction,
)

_PLANNER = PlannerSettings()


class Verdict(StrEnum):
    SWITCH = "switch"  # open a SwitchRequest to ``target``
    STAY = "stay"  # decided: the primary is where it should be
    HOLD = "hold"  # did not decide (paused, busy, cooling down, ...)


@dataclass(frozen=True)
class DecisionSettings:
    """Tunables of the policy that are not per-workload (those are in ``spec.policy``)."""

    horizon_hours: float = 1.0  # the horizon of the market's risks
    hysteresis_percent: float = 5.0
    require_payback: bool = True
    max_payback_hours: float = 24.0
    # A planned move bills the new instance while the old one serves: its boot (~90 s) and the drain (30 s).
    switch_overlap_hours: float = 2 / 60
    planned_downtime_hours: float = 5 / 3600  # the cutover with a ready instance
    interruption_overhead_hours: float = INTERRUPTION_OVERHEAD_HOURS
    interruption_downtime_hours: float = EXPECTED_DOWNTIME_HOURS
    cooldown_from_launch: bool = True


DEFAULT_DECISION_SETTINGS = DecisionSettings()


@dataclass(frozen=True)
class PoolCost:
    """One pool as the policy saw it."""

    pool: Pool
    price: float | None
    risk: float
    hourly_cost: float | None
    eligible: bool
    why_not: str = ""

    def to_record(self) -> dict[str, Any]:
        return {
            "pool": self.pool.name,
            "lifecycle": self.pool.lifecycle.value,
            "price": self.price,
            "risk": self.risk,
            "hourly_cost": self.hourly_cost,
            "eligible": self.eligible,
            "why_not": self.why_not,
        }


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str  # CamelCase, for events and metrics
    message: str
    at: datetime
    current: Pool | None = None
    target: Pool | None = None
    considered: tuple[PoolCost, ...] = ()
    current_cost: float | None = None
    target_cost: float | None = None

    @property
    def switch(self) -> bool:
        return self.verdict is Verdict.SWITCH

    @property
    def saving_percent(self) -> float | None:
        if self.current_cost is None or self.target_cost is None or self.current_cost <= 0:
            return None
        return 100.0 * (self.current_cost - self.target_cost) / self.current_cost

    def switch_target(self) -> SwitchTarget | None:
        """The SwitchRequest target that carries this decision out (None unless it switches)."""
        if not self.switch or self.target is None:
            return None
        kind = TargetKind.POOL if self.target.is_spot else TargetKind.ON_DEMAND
        return SwitchTarget(kind=kind, pool=self.target.name)

    def to_record(self) -> dict[str, Any]:
        """The decision with its inputs, JSON-ready (the caller adds the scorer's name and version)."""
        return {
            "at": self.at.isoformat(),
            "verdict": self.verdict.value,
            "reason": self.reason,
            "message": self.message,
            "current": str(self.current) if self.current else None,
            "target": str(self.target) if self.target else None,
            "current_cost": self.current_cost,
            "target_cost": self.target_cost,
            "saving_percent": self.saving_percent,
            "considered": [c.to_record() for c in self.considered],
        }


def hazard(risk: float, horizon_hours: float = 1.0) -> float:
    """Interruptions per hour implied by a probability within ``horizon_hours`` (constant hazard)."""
    r = min(max(risk, 0.0), 1.0 - 1e-9)
    return -math.log1p(-r) / horizon_hours


def hourly_cost(
    pool: Pool, market: Market, policy: Policy, settings: DecisionSettings = DEFAULT_DECISION_SETTINGS
) -> float | None:
    """Price plus the expected cost of interruptions per hour (None without a price)."""
    price = market.price(pool)
    if price is None:
        return None
    per_interruption = (
        price * settings.interruption_overhead_hours
        + policy.downtime_cost_per_hour * settings.interruption_downtime_hours
    )
    return price + hazard(market.risk(pool), settings.horizon_hours) * per_interruption


def risk_within_bands(pool: Pool, market: Market, policy: Policy) -> bool:
    """Whether a running pool may keep the primary: the bands of :func:`pools.eligible`, capacity aside."""
    if not pool.is_spot:
        return True
    risk = market.risk(pool)
    if risk > policy.max_interruption_risk or risk > HIGH_RISK:
        return False
    if risk >= LOW_RISK:
        saving = savings_fraction(pool, market)
        return saving is not None and saving > HIGH_RISK_MIN_SAVINGS
    return True


def _why_not(pool: Pool, market: Market, view: AgentView) -> str:
    spec = view.spec
    outside = in_candidates(spec, pool)
    if outside is not None:
        return outside
    if pool in market.unavailable:
        return "refused capacity recently"
    if market.price(pool) is None:
        return "no price"
    if not pool.is_spot:
        return ""
    risk = market.risk(pool)
    if risk > spec.policy.max_interruption_risk:
        return f"risk {risk:.0%} above maxInterruptionRisk {spec.policy.max_interruption_risk:.0%}"
    if risk > HIGH_RISK:
        return f"risk {risk:.0%} above {HIGH_RISK:.0%}"
    if risk >= LOW_RISK:
        saving = savings_fraction(pool, market)
        if saving is None or saving <= HIGH_RISK_MIN_SAVINGS:
            shown = "unknown" if saving is None else f"{saving:.0%}"
            return f"risk {risk:.0%} needs savings above {HIGH_RISK_MIN_SAVINGS:.0%} (has {shown})"
    return ""


def _assess(pool: Pool, market: Market, view: AgentView, settings: DecisionSettings) -> PoolCost:
    ok = in_candidates(view.spec, pool) is None and eligible(pool, market, view.spec.policy)
    why = "" if ok else (_why_not(pool, market, view) or "not eligible")
    return PoolCost(
        pool=pool,
        price=market.price(pool),
        risk=market.risk(pool),
        hourly_cost=hourly_cost(pool, market, view.spec.policy, settings),
        eligible=ok,
        why_not=why,
    )


def _hold_reason(view: AgentView, f: Facts) -> tuple[str, str] | None:
    spec = view.spec
    if view.deleting:
        return "Deleting", "the SpotAgent is being deleted"
    if spec.mode is not Mode.AUTO_SWITCH:
        return "NotAutoSwitch", f"mode is {spec.mode.value}"
    if spec.capacity is not Capacity.SPOT:
        return "OnDemandCapacity", "spec.capacity is on-demand: decisions only move spot workloads"
    if spec.paused:
        return "Paused", "the SpotAgent is paused"
    moving = sorted(s.name for s in view.switches if not s.final)
    if moving:
        return "SwitchInProgress", f"SwitchRequest {moving[0]} is not finished"
    if view.notices:
        n = view.notices[0]
        return "NoticePending", f"a {n.kind.value} notice for {n.instance_id} is being handled"
    rebalancing = [r.name for r in view.replicas if r.reason is ReplicaReason.REBALANCE and not r.final]
    if rebalancing:
        return "RebalanceInProgress", f"Replica {rebalancing[0]} answers a rebalance recommendation"
    if len(f.primaries) > 1:
        return "NoHealthyPrimary", "more than one instance claims to be the primary"
    primary = f.primary
    if primary is None:
        return "NoHealthyPrimary", "there is no primary"
    if not f.healthy(primary):
        return "NoHealthyPrimary", f"the primary {primary.instance_id} is not healthy"
    if not f.serves(primary):
        return "NoHealthyPrimary", f"traffic does not point at the primary {primary.instance_id}"
    return None


def _cooldown_until(view: AgentView, f: Facts, settings: DecisionSettings) -> datetime | None:
    marks = [view.last_switch_at]
    if settings.cooldown_from_launch and f.primary is not None:
        marks.append(f.primary.launched_at)
    known = [m for m in marks if m is not None]
    if not known:
        return None
    return max(known) + timedelta(seconds=view.spec.policy.cooldown_seconds)


def _cheapest(options: list[PoolCost]) -> PoolCost | None:
    priced = [o for o in options if o.hourly_cost is not None]
    return min(priced, key=lambda o: (o.hourly_cost, o.risk, str(o.pool))) if priced else None


def _on_demand_choice(view: AgentView, market: Market, current: Pool, pinned: str | None) -> list[Pool]:
    """Where a move to on-demand would go: :func:`pools.on_demand_candidates`' first choice (the same
    type and zone when it can), found without ranking every on-demand pool when that one will do."""
    same = current.as_on_demand()
    if (
        current.instance_type in view.spec.instance_types
        and (pinned is None or current.zone == pinned)
        and same not in market.unavailable
    ):
        return [same]
    return on_demand_candidates(view.spec, market, current, pinned)[:1]


def decide(
    view: AgentView, market: Market, now: datetime, settings: DecisionSettings = DEFAULT_DECISION_SETTINGS
) -> Decision:
    """Stay, switch (and where to), or hold; see the module docstring for the rules."""
    f = Facts(view, market, now, _PLANNER)
    held = _hold_reason(view, f)
    if held is not None:
        return Decision(Verdict.HOLD, held[0], held[1], now)
    primary = f.primary
    assert primary is not None  # _hold_reason guarantees it
    current = primary.pool
    until = _cooldown_until(view, f, settings)
    if until is not None and now < until:
        return Decision(Verdict.HOLD, "Cooldown", f"cooling down until {until.isoformat()}", now, current)
    if market.price(current) is None:
        return Decision(
            Verdict.HOLD, "NoMarketData", f"no price for the current pool {current}", now, current
        )

    spec, policy = view.spec, view.spec.policy
    pinned = f.volumes_pin_zone()
    spot = candidate_pools(spec, market, Capacity.SPOT, pinned)
    pools = list(dict.fromkeys([current, *spot, *_on_demand_choice(view, market, current, pinned)]))
    considered = tuple(_assess(p, market, view, settings) for p in pools)
    mine = considered[0]
    cur_cost = mine.hourly_cost
    assert cur_cost is not None
    spot_options = [c for c in considered if c.pool.is_spot and c.eligible and c.pool != current]
    od_options = [c for c in considered if not c.pool.is_spot and c.eligible and c.pool != current]

    def verdict(kind: Verdict, reason: str, message: str, target: PoolCost | None = None) -> Decision:
        return Decision(
            kind,
            reason,
            message,
            now,
            current,
            target.pool if target else None,
            considered,
            cur_cost,
            target.hourly_cost if target else None,
        )

    if not risk_within_bands(current, market, policy):
        risk = market.risk(current)
        best = _cheapest(spot_options)
        if best is not None:
            return verdict(
                Verdict.SWITCH,
                "RiskTooHigh",
                f"risk in {current} is {risk:.0%}: moving to {best.pool} ({best.risk:.0%})",
                best,
            )
        if policy.on_demand_fallback and od_options:
            target = od_options[0]
            return verdict(
                Verdict.SWITCH,
                "RiskTooHigh",
                f"risk in {current} is {risk:.0%} and no spot pool is eligible: moving to {target.pool}",
                target,
            )
        return verdict(
            Verdict.STAY,
            "RiskTooHighNoAlternative",
            f"risk in {current} is {risk:.0%} but no eligible pool to move to",
        )

    best = _cheapest(spot_options)
    if best is None or best.hourly_cost is None:
        return verdict(Verdict.STAY, "NoEligiblePool", "no other eligible spot pool")
    saving = cur_cost - best.hourly_cost
    if saving <= 0:
        return verdict(Verdict.STAY, "CurrentIsBest", f"{current} has the lowest expected cost", best)
    percent = 100.0 * saving / cur_cost
    needed = max(policy.min_savings_percent, settings.hysteresis_percent)
    if percent < needed:
        return verdict(
            Verdict.STAY,
            "SavingTooSmall",
            f"{best.pool} would save {percent:.1f} % (needs {needed:g} %)",
            best,
        )
    if settings.require_payback:
        stay_hours = min(
            1.0 / max(hazard(best.risk, settings.horizon_hours), 1e-9), settings.max_payback_hours
        )
        one_off = (best.price or 0.0) * settings.switch_overlap_hours + (
            policy.downtime_cost_per_hour * settings.planned_downtime_hours
        )
        if saving * stay_hours < one_off:
            return verdict(
                Verdict.STAY,
                "WouldNotPayBack",
                f"{best.pool} saves {saving:.4f}/h over an expected {stay_hours:.1f} h, less than the "
                f"move's {one_off:.4f}",
                best,
            )
    reason = "Cheaper" if current.is_spot else "ReturnToSpot"
    return verdict(
        Verdict.SWITCH,
        reason,
        f"moving from {current} to {best.pool}: expected cost {percent:.1f} % lower",
        best,
    )


__all__ = [
    "DEFAULT_DECISION_SETTINGS",
    "Decision",
    "DecisionSettings",
    "PoolCost",
    "Verdict",
    "decide",
    "hazard",
    "hourly_cost",
    "risk_within_bands",
]
