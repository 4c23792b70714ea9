"""Replay spot traces through the real operator: the same planner, reconciler and decision policy.

Each policy runs one SpotAgent in its own :class:`World` (simulated clock, in-memory EC2 and traffic).
The simulator only plays the cloud and the decision loop:

* **Capacity**: a spot pool launches only while its trace says it is available.
* **Reclaims**: when a pool turns unavailable, every instance of ours in it gets an interruption notice
  and is terminated ``notice_lead_seconds`` later (the trace tick is taken as the notice time).
* **Prices**: per pool from :mod:`simulation.prices`, changing on their own steps.
* **Decisions**: every ``decision_interval_seconds`` an auto-switch agent's market is scored and
  :func:`planning.decisions.decide` runs; a ``switch`` becomes a SwitchRequest (reason ``decision``).
  Scores come from the same scorers the operator uses, evaluated for all decision times at once
  (features are causal, so this sees nothing a live scorer would not). The decision sees the pools
  unavailable at that moment when ``decisions_see_availability`` (as from spot placement scores);
  launches learn it the hard way either way.

Time advances from event to event (trace changes, price steps, decisions, reclaims, the planner's own
requeue times, boots) instead of by fixed ticks; between events nothing changes, so cost and
availability are integrated exactly. Billing is per second for every pending or running instance.
A primary is *up* while traffic points at a running instance; every traffic move after the start
also costs ``cutover_seconds`` of downtime (moving an Elastic IP). Before the replay the agent gets
its first primary (boot excluded from the figures), so every policy starts serving.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import numpy as np

from spot_operator.api import Capacity, Mode, SpotAgentSpec, SwitchReason
from spot_operator.api.switchrequest import SwitchPhase
from spot_operator.decisions.advisor import SpotAdvisor
from spot_operator.decisions.features import (
    FloatArray,
    PoolHistory,
    PriceHistory,
    from_epoch,
    pool_features,
    siblings_of,
    to_epoch,
)
from spot_operator.decisions.rules import DEFAULT_RULES, RuleParameters, rule_risk
from spot_operator.decisions.xgb import XGBoostScorer
from spot_operator.inmemory import FixedClock
from spot_operator.planning.decisions import DEFAULT_DECISION_SETTINGS, DecisionSettings, decide
from spot_operator.planning.model import InstanceState, NoticeKind, PlannerSettings, Pool
from spot_operator.simulation.traces import Scenario
from spot_operator.simulation.world import World

AGENT = "sim"
_EIP = "eipalloc-0123456789abcdef0"
_BIG = 1_000_000_000
HOUR = 3600.0


class ScorerKind(StrEnum):
    NONE = "none"  # every pool scored 0 risk: price alone decides
    RULES = "rules"
    XGBOOST = "xgboost"


@dataclass(frozen=True)
class SimulationParams:
    boot_seconds: float = 90.0
    cutover_seconds: float = 5.0
    notice_lead_seconds: float = 120.0
    decision_interval_seconds: float = 300.0
    terminate_wait_seconds: int = 30
    # What an hour of downtime costs the simulated workload (its policy.downtimeCostPerHour).
    downtime_cost_per_hour: float = 25.0
    price_noise: float = 0.05
    price_step_hours: float = 1.0
    seed: int = 0
    min_available: int = 1
    decisions_see_availability: bool = True
    warmup_seconds: float = 900.0
    # Finished switches, replicas and terminated instances are forgotten after this long, as retention
    # would; it keeps a long replay from slowing down.
    forget_after_seconds: float = 3600.0
    # The planner re-checks a waiting switch every wait_poll_seconds (5 s in the operator). Here every
    # boot, deadline and trace change is an event of its own, so polling finds nothing new in between;
    # a longer poll only saves ticks.
    poll_seconds: float = 60.0


@dataclass(frozen=True)
class PolicyConfig:
    name: str
    description: str
    mode: Mode
    capacity: Capacity = Capacity.SPOT
    scorer: ScorerKind = ScorerKind.NONE
    decisions: DecisionSettings | None = None  # None: no decision loop
    policy: Mapping[str, Any] = field(default_factory=dict)
    # Never buys on-demand: with no spot capacity anywhere the workload is down until some returns.
    spot_only: bool = False


GREEDY = DecisionSettings(hysteresis_percent=0.0, require_payback=False)

POLICIES: tuple[PolicyConfig, ...] = (
    PolicyConfig(
        "on-demand", "always on-demand (capacity on-demand, mode off)", Mode.OFF, Capacity.ON_DEMAND
    ),
    PolicyConfig(
        "stay",
        "spot only: stay until interrupted, then any available zone (mode off)",
        Mode.OFF,
        policy={"on_demand_fallback": False},
        spot_only=True,
    ),
    PolicyConfig(
        "cheapest",
        "spot only: always the cheapest available zone (auto-switch, no thresholds, no risk)",
        Mode.AUTO_SWITCH,
        decisions=GREEDY,
        policy={
            "min_savings_percent": 0.0,
            "max_interruption_risk": 1.0,
            "cooldown_seconds": 0,
            "on_demand_fallback": False,
        },
        spot_only=True,
    ),
    PolicyConfig(
        "ours-rules",
        "auto-switch with the rule scorer",
        Mode.AUTO_SWITCH,
        scorer=ScorerKind.RULES,
        decisions=DEFAULT_DECISION_SETTINGS,
        policy={"on_demand_fallback": False},
    ),
    PolicyConfig(
        "ours-xgboost",
        "auto-switch with the xgboost model",
        Mode.AUTO_SWITCH,
        scorer=ScorerKind.XGBOOST,
        decisions=DEFAULT_DECISION_SETTINGS,
        policy={"on_demand_fallback": False},
    ),
    PolicyConfig(
        "hot-standby",
        "spot only: a hot standby in another zone (manual-replica)",
        Mode.MANUAL_REPLICA,
        policy={"on_demand_fallback": False},
        spot_only=True,
    ),
)
POLICY_NAMES = tuple(p.name for p in POLICIES)


@dataclass(frozen=True)
class RiskTable:
    """Risk per pool at each decision time."""

    times: FloatArray
    risks: Mapping[Pool, FloatArray]

    def at(self, t: float) -> dict[Pool, float]:
        i = int(np.searchsorted(self.times, t, side="right")) - 1
        if i < 0:
            return {}
        return {p: float(r[i]) for p, r in self.risks.items()}


@dataclass
class PolicyResult:
    policy: str
    scenario: str
    hours: float
    cost_usd: float
    on_demand_cost_usd: float
    interruptions: int
    replica_interruptions: int
    switches: int
    decision_switches: int
    emergency_switches: int
    failed_switches: int
    downtime_seconds: float
    downtime_cost_usd: float
    decisions: dict[str, int] = field(default_factory=dict)
    cost_series: list[tuple[float, float]] = field(default_factory=list)  # (hours, cumulative USD)
    occupancy: list[tuple[float, float, str]] = field(default_factory=list)  # (from h, to h, pool or "down")
    notes: list[str] = field(default_factory=list)

    @property
    def savings_percent(self) -> float:
        if self.on_demand_cost_usd <= 0:
            return 0.0
        return 100.0 * (1.0 - self.cost_usd / self.on_demand_cost_usd)

    @property
    def availability_percent(self) -> float:
        total = self.hours * HOUR
        return 100.0 * (1.0 - self.downtime_seconds / total) if total > 0 else 100.0

    def summary(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "scenario": self.scenario,
            "hours": round(self.hours, 3),
            "cost_usd": round(self.cost_usd, 4),
            "on_demand_cost_usd": round(self.on_demand_cost_usd, 4),
            "savings_percent": round(self.savings_percent, 3),
            "interruptions": self.interruptions,
            "replica_interruptions": self.replica_interruptions,
            "switches": self.switches,
            "decision_switches": self.decision_switches,
            "emergency_switches": self.emergency_switches,
            "failed_switches": self.failed_switches,
            "downtime_seconds": round(self.downtime_seconds, 3),
            "availability_percent": round(self.availability_percent, 5),
            "downtime_cost_usd": round(self.downtime_cost_usd, 4),
            "cost_with_downtime_usd": round(self.cost_usd + self.downtime_cost_usd, 4),
            "decisions": dict(sorted(self.decisions.items())),
        }


def agent_spec(scenario: Scenario, config: PolicyConfig, params: SimulationParams) -> SpotAgentSpec:
    policy = {"downtime_cost_per_hour": params.downtime_cost_per_hour, **config.policy}
    return SpotAgentSpec.model_validate(
        {
            "region": scenario.region,
            "image": "ami-0123456789abcdef0",
            "instance_types": [scenario.instance_type],
            "zones": list(scenario.zones),
            "capacity": config.capacity,
            "mode": config.mode,
            "traffic": {"elastic_ip_allocation_id": _EIP},
            "termination": {"terminate_wait_seconds": params.terminate_wait_seconds},
            "policy": policy,
        }
    )


def histories(
    scenario: Scenario,
    prices: Mapping[Pool, PriceHistory],
    on_demand: float,
    advisor: SpotAdvisor | None,
    min_available: int = 1,
) -> dict[Pool, PoolHistory]:
    return {
        pool: PoolHistory(
            pool,
            scenario.availability(pool, min_available),
            prices.get(pool),
            on_demand,
            advisor.band(scenario.original_region(pool), pool.instance_type) if advisor else None,
        )
        for pool in scenario.pools
    }


def decision_times(scenario: Scenario, interval: float) -> FloatArray:
    start = to_epoch(scenario.start)
    return start + np.arange(interval, scenario.duration_seconds + 1e-9, interval)


def risk_table(
    pools_history: Mapping[Pool, PoolHistory],
    times: FloatArray,
    kind: ScorerKind,
    model: XGBoostScorer | None = None,
    rules: RuleParameters = DEFAULT_RULES,
    horizon_hours: float = 1.0,
) -> RiskTable:
    """Score every pool at every decision time with the operator's scorers (one batch per pool)."""
    risks: dict[Pool, FloatArray] = {}
    for pool, history in pools_history.items():
        if kind is ScorerKind.NONE:
            risks[pool] = np.zeros(times.size)
            continue
        x = pool_features(history, times, siblings_of(pool, pools_history))
        if kind is ScorerKind.RULES:
            risks[pool] = rule_risk(x, None, rules, horizon_hours)
        else:
            if model is None:
                raise ValueError("the xgboost policy needs a model")
            risks[pool] = model.predict(x)
    return RiskTable(times, risks)


class _Replay:
    def __init__(
        self,
        scenario: Scenario,
        config: PolicyConfig,
        params: SimulationParams,
        prices: Mapping[Pool, PriceHistory],
        on_demand: float,
        risks: RiskTable | None,
    ) -> None:
        self.scenario = scenario
        self.config = config
        self.params = params
        self.prices = prices
        self.on_demand = on_demand
        self.risks = risks
        self.start = to_epoch(scenario.start)
        self.end = self.start + scenario.duration_seconds
        self.availability = scenario.availabilities(params.min_available)
        self.world = World(
            clock=FixedClock(scenario.start - timedelta(seconds=params.warmup_seconds)),
            boot_seconds=params.boot_seconds,
            settings=replace(PlannerSettings(), wait_poll_seconds=params.poll_seconds),
        )
        self.world.on_demand = {scenario.instance_type: on_demand}
        self.state = self.world.add_agent(AGENT, agent_spec(scenario, config, params))
        if config.spot_only:
            for pool in scenario.pools:
                self.world.ec2.set_capacity(pool.as_on_demand(), 0)
        self.available: dict[Pool, bool] = {}
        self.reclaims: dict[str, float] = {}
        self.terminated_seen: dict[str, float] = {}
        self.counted: set[str] = set()
        self.requeue_at: float | None = None
        self.moves = 0
        self.result = PolicyResult(
            config.name,
            scenario.name,
            scenario.duration_seconds / HOUR,
            0.0,
            on_demand * scenario.duration_seconds / HOUR,
            0,
            0,
            0,
            0,
            0,
            0,
            0.0,
            0.0,
        )
        # Availability changes of every pool, merged: (time, pool index, available).
        pools = scenario.pools
        self.pools = pools
        times, which, values = [], [], []
        for i, pool in enumerate(pools):
            av = self.availability[pool]
            times.append(av.times)
            which.append(np.full(av.times.size, i))
            values.append(av.values)
        order = np.argsort(np.concatenate(times), kind="stable")
        self.change_t = np.concatenate(times)[order]
        self.change_pool = np.concatenate(which)[order]
        self.change_val = np.concatenate(values)[order]
        self.price_t = (
            np.unique(np.concatenate([p.times for p in prices.values()])) if prices else np.empty(0)
        )

    # -- the cloud -----------------------------------------------------------------------------
    def _now(self) -> float:
        return to_epoch(self.world.clock.now())

    def _set_available(self, pool: Pool, available: bool) -> bool:
        """Apply a trace change; True if it touched one of our instances."""
        was = self.available.get(pool)
        self.available[pool] = available
        self.world.ec2.set_capacity(pool, _BIG if available else 0)
        if available or was is False:
            return False
        touched = False
        now = self._now()
        serving = self.world.serving(AGENT)
        for inst in self.world.live(AGENT):
            if inst.pool != pool or inst.instance_id in self.reclaims:
                continue
            self.world.notice(inst.instance_id, NoticeKind.INTERRUPTION, self.params.notice_lead_seconds)
            self.reclaims[inst.instance_id] = now + self.params.notice_lead_seconds
            if inst.instance_id == serving:
                self.result.interruptions += 1
            else:
                self.result.replica_interruptions += 1
            touched = True
        return touched

    def _set_prices(self, t: float) -> None:
        for pool, series in self.prices.items():
            price = float(series.price_at(t)[0])
            if not np.isnan(price):
                self.world.prices[pool] = price

    def _set_risks(self, t: float) -> None:
        if self.risks is None:
            for pool in self.pools:
                self.world.risks[pool] = 0.0
            return
        self.world.risks.update(self.risks.at(t))

    # -- the operator --------------------------------------------------------------------------
    async def _tick(self) -> None:
        """One operator cycle; again at once while a cycle changed something (as a status update
        re-triggers the real operator's handlers), so nothing waits for the planner's poll."""
        for _ in range(5):
            before = self.world.traffic.moves.get(_EIP, 0)
            results = await self.world.tick()
            self.moves += self.world.traffic.moves.get(_EIP, 0) - before
            result = results[self.state.key]
            requeue = result.plan.requeue_after
            self.requeue_at = self._now() + requeue if requeue is not None else None
            if not result.events:
                break

    def _decide(self, n: int) -> bool:
        settings = self.config.decisions
        if settings is None:
            return False
        self.world.observe()
        view = self.state.view()
        market = self.world.market_for(self.state)
        if self.params.decisions_see_availability:
            down = frozenset(p for p, ok in self.available.items() if not ok)
            market = replace(market, unavailable=market.unavailable | down)
        decision = decide(view, market, self.world.clock.now(), settings)
        self.result.decisions[decision.reason] = self.result.decisions.get(decision.reason, 0) + 1
        target = decision.switch_target()
        if target is None:
            return False
        self.world.request_switch(AGENT, f"decision-{n}", target, SwitchReason.DECISION)
        return True

    def _billing(self) -> tuple[float, bool, str]:
        """(USD per hour now, serving, what serves) from the live instances."""
        live = {i.instance_id: i for i in self.world.live(AGENT)}
        rate = 0.0
        for inst in live.values():
            if inst.pool.is_spot:
                rate += self.world.prices.get(inst.pool, 0.0)
            else:
                rate += self.on_demand
        serving = live.get(self.world.serving(AGENT) or "")
        up = serving is not None and serving.state is InstanceState.RUNNING
        label = "down"
        if up and serving is not None:
            label = serving.pool.zone + ("" if serving.pool.is_spot else " on-demand")
        return rate, up, label

    def _forget(self, now: float) -> None:
        """Drop what retention would: finished switches and replicas, long-terminated instances."""
        horizon = self.params.forget_after_seconds
        for name, sw in list(self.state.switches.items()):
            if not sw.final:
                continue
            self._count_switch(name)
            done = sw.status.completed_at
            if done is not None and now - to_epoch(done) > horizon:
                del self.state.switches[name]
                self.world.objects.switches.pop((self.state.ref.namespace, name), None)
        live_purposes = {i.purpose for i in self.world.live(AGENT)}
        for name, rep in list(self.state.replicas.items()):
            if rep.final and rep.purpose not in live_purposes and (now - to_epoch(rep.created_at)) > horizon:
                del self.state.replicas[name]
                self.state.replica_status.pop(name, None)
                self.world.objects.replicas.pop((self.state.ref.namespace, name), None)
        for instance_id, rec in list(self.world.ec2.records.items()):
            if rec.instance.state is not InstanceState.TERMINATED:
                continue
            seen = self.terminated_seen.setdefault(instance_id, now)
            if now - seen > horizon:
                del self.world.ec2.records[instance_id]
                del self.terminated_seen[instance_id]
                self.state.heartbeats.pop(instance_id, None)

    def _count_switch(self, name: str) -> None:
        if name in self.counted:
            return
        sw = self.state.switches[name]
        if not sw.final:
            return
        self.counted.add(name)
        phase = sw.status.phase
        if phase is SwitchPhase.COMPLETED:
            if sw.status.old_instance_id is None or sw.status.new_instance_id == sw.status.old_instance_id:
                return  # nothing moved (e.g. "already there")
            self.result.switches += 1
            if sw.spec.reason is SwitchReason.DECISION:
                self.result.decision_switches += 1
            elif sw.spec.reason is SwitchReason.EMERGENCY:
                self.result.emergency_switches += 1
        elif phase is SwitchPhase.FAILED:
            self.result.failed_switches += 1

    # -- the replay ----------------------------------------------------------------------------
    async def _warm_up(self) -> None:
        for pool in self.pools:
            self._set_available(pool, bool(self.availability[pool].state_at(self.start)[0] == 1.0))
        self._set_prices(self.start)
        self._set_risks(self.start)
        deadline = self.world.clock.now() + timedelta(seconds=self.params.warmup_seconds)
        await self._tick()
        while self.world.clock.now() < deadline:
            _, up, _ = self._billing()
            if up and self.requeue_at is None:
                break
            self.world.clock.advance(5.0)
            await self._tick()
        if not self._billing()[1]:
            self.result.notes.append("no primary served by the end of the warm-up")
        self.world.clock.set(from_epoch(self.start))
        self.moves = 0

    async def run(self, progress: Callable[[float], None] | None = None) -> PolicyResult:
        p = self.params
        await self._warm_up()
        decisions = (
            decision_times(self.scenario, p.decision_interval_seconds) if self.config.decisions else None
        )
        ci = int(np.searchsorted(self.change_t, self.start, side="right"))
        pi = int(np.searchsorted(self.price_t, self.start, side="right"))
        di = 0
        n_decisions = 0
        now = self.start
        cost = 0.0
        down = 0.0
        series: list[tuple[float, float]] = [(0.0, 0.0)]
        occupancy: list[list[Any]] = []
        next_sample = self.start + HOUR
        last_forget = now
        stalled = 0
        rate, up, label = self._billing()
        while now < self.end:
            candidates = [self.end]
            if ci < self.change_t.size:
                candidates.append(float(self.change_t[ci]))
            if pi < self.price_t.size:
                candidates.append(float(self.price_t[pi]))
            if decisions is not None and di < decisions.size:
                candidates.append(float(decisions[di]))
            if self.reclaims:
                candidates.append(min(self.reclaims.values()))
            if self.requeue_at is not None:
                candidates.append(max(self.requeue_at, now))
            for inst in self.state.instances.values():
                if inst.state is InstanceState.PENDING:
                    candidates.append(max(to_epoch(inst.launched_at) + p.boot_seconds, now))
            t = min(candidates)
            stalled = stalled + 1 if t <= now else 0
            if stalled > 100:
                raise RuntimeError(f"{self.config.name}: the replay stopped advancing at {from_epoch(now)}")
            # Integrate the interval [now, t) with the state as it was.
            dt = t - now
            if dt > 0:
                while next_sample <= t:
                    series.append(
                        ((next_sample - self.start) / HOUR, cost + rate * (next_sample - now) / HOUR)
                    )
                    next_sample += HOUR
                cost += rate * dt / HOUR
                if not up:
                    down += dt
                if occupancy and occupancy[-1][2] == label and occupancy[-1][1] == now:
                    occupancy[-1][1] = t
                else:
                    occupancy.append([now, t, label])
            if t >= self.end:
                now = t
                break
            self.world.clock.set(from_epoch(t))
            now = t
            act = False
            while ci < self.change_t.size and self.change_t[ci] <= t:
                pool = self.pools[int(self.change_pool[ci])]
                act |= self._set_available(pool, bool(self.change_val[ci]))
                ci += 1
            if pi < self.price_t.size and self.price_t[pi] <= t:
                pi = int(np.searchsorted(self.price_t, t, side="right"))
                self._set_prices(t)
            for instance_id, due in list(self.reclaims.items()):
                if due <= t:
                    del self.reclaims[instance_id]
                    rec = self.world.ec2.records.get(instance_id)
                    if rec is not None and rec.instance.live:
                        self.world.reclaim(instance_id)
                        act = True
            if self.requeue_at is not None and self.requeue_at <= t:
                act = True
            if any(
                i.state is InstanceState.PENDING and to_epoch(i.launched_at) + p.boot_seconds <= t
                for i in self.state.instances.values()
            ):
                act = True
            if decisions is not None and di < decisions.size and decisions[di] <= t:
                while di < decisions.size and decisions[di] <= t:
                    di += 1
                self._set_risks(t)
                n_decisions += 1
                act |= self._decide(n_decisions)
            if act:
                await self._tick()
            rate, up, label = self._billing()
            if t - last_forget > p.forget_after_seconds:
                self._forget(t)
                last_forget = t
                if progress is not None:
                    progress((t - self.start) / (self.end - self.start))
        for name in list(self.state.switches):
            self._count_switch(name)
        series.append(((self.end - self.start) / HOUR, cost))
        down += self.moves * p.cutover_seconds
        self.result.cost_usd = cost
        self.result.downtime_seconds = min(down, self.end - self.start)
        self.result.downtime_cost_usd = self.result.downtime_seconds / HOUR * p.downtime_cost_per_hour
        self.result.cost_series = [(round(h, 4), round(c, 4)) for h, c in series]
        self.result.occupancy = [
            (round((a - self.start) / HOUR, 5), round((b - self.start) / HOUR, 5), str(lab))
            for a, b, lab in occupancy
        ]
        if progress is not None:
            progress(1.0)
        return self.result


def simulate(
    scenario: Scenario,
    config: PolicyConfig,
    params: SimulationParams,
    prices: Mapping[Pool, PriceHistory],
    on_demand: float,
    risks: RiskTable | None = None,
    progress: Callable[[float], None] | None = None,
) -> PolicyResult:
    """Replay one scenario under one policy (synchronous; runs its own event loop)."""
    if config.scorer is not ScorerKind.NONE and risks is None:
        raise ValueError(f"policy {config.name} needs a risk table ({config.scorer.value})")
    replay = _Replay(scenario, config, params, prices, on_demand, risks)
    return asyncio.run(replay.run(progress))


@dataclass
class ScenarioResult:
    scenario: Scenario
    results: list[PolicyResult]
    model: dict[str, Any] = field(default_factory=dict)  # the xgboost model's provenance and held-out metrics

    def by_policy(self) -> dict[str, PolicyResult]:
        return {r.policy: r for r in self.results}


def totals(results: Sequence[ScenarioResult], policies: Sequence[str]) -> list[dict[str, Any]]:
    """One row per policy summed over scenarios (availability weighted by time)."""
    rows = []
    for name in policies:
        mine = [r.by_policy()[name] for r in results if name in r.by_policy()]
        if not mine:
            continue
        hours = sum(r.hours for r in mine)
        cost = sum(r.cost_usd for r in mine)
        ref = sum(r.on_demand_cost_usd for r in mine)
        down = sum(r.downtime_seconds for r in mine)
        downtime_cost = sum(r.downtime_cost_usd for r in mine)
        rows.append(
            {
                "policy": name,
                "scenarios": len(mine),
                "hours": round(hours, 3),
                "cost_usd": round(cost, 4),
                "on_demand_cost_usd": round(ref, 4),
                "savings_percent": round(100.0 * (1 - cost / ref), 3) if ref else 0.0,
                "interruptions": sum(r.interruptions for r in mine),
                "switches": sum(r.switches for r in mine),
                "decision_switches": sum(r.decision_switches for r in mine),
                "downtime_seconds": round(down, 3),
                "availability_percent": round(100.0 * (1 - down / (hours * HOUR)), 5) if hours else 100.0,
                "downtime_cost_usd": round(downtime_cost, 4),
                "cost_with_downtime_usd": round(cost + downtime_cost, 4),
            }
        )
    return rows


def params_dict(params: SimulationParams) -> dict[str, Any]:
    return asdict(params)


def scenario_started(scenario: Scenario) -> datetime:
    return scenario.start


__all__ = [
    "POLICIES",
    "POLICY_NAMES",
    "PolicyConfig",
    "PolicyResult",
    "RiskTable",
    "ScenarioResult",
    "ScorerKind",
    "SimulationParams",
    "agent_spec",
    "decision_times",
    "histories",
    "params_dict",
    "risk_table",
    "simulate",
    "totals",
]
