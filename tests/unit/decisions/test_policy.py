"""The auto-switch decision policy (planning/decisions.py): a table of situations, then properties."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spot_operator.api import Capacity, ReplicaReason, SwitchReason, SwitchTarget, TargetKind
from spot_operator.api.common import ObjectRef
from spot_operator.api.switchrequest import SwitchRequestSpec
from spot_operator.planning.decisions import (
    DEFAULT_DECISION_SETTINGS,
    Decision,
    DecisionSettings,
    Verdict,
    decide,
    hazard,
    hourly_cost,
)
from spot_operator.planning.model import (
    AgentView,
    Market,
    Notice,
    NoticeKind,
    Pool,
    PoolQuote,
    ReplicaObject,
    SwitchObject,
)
from spot_operator.planning.pools import eligible, in_candidates

from .builders import NOW, A, B, C, ago, market, primary, spec, view


def _switch_object(name: str = "move", final: bool = False) -> SwitchObject:
    from spot_operator.api import SwitchRequestStatus
    from spot_operator.api.switchrequest import SwitchPhase

    sw_spec = SwitchRequestSpec(
        agent_ref=ObjectRef(name="web"),
        target=SwitchTarget(kind=TargetKind.CHEAPEST),
        reason=SwitchReason.MANUAL,
    )
    status = SwitchRequestStatus(phase=SwitchPhase.COMPLETED if final else SwitchPhase.LAUNCHING)
    return SwitchObject(name=name, uid=f"uid-{name}", spec=sw_spec, created_at=ago(60), status=status)


CHEAP_B = {A: 0.05, B: 0.03, C: 0.04}

HOLDS: list[tuple[str, dict[str, Any], str]] = [
    ("mode off", {"agent_spec": spec(mode="off")}, "NotAutoSwitch"),
    ("manual-replica", {"agent_spec": spec(mode="manual-replica")}, "NotAutoSwitch"),
    ("on-demand capacity", {"agent_spec": spec(capacity="on-demand")}, "OnDemandCapacity"),
    ("paused", {"agent_spec": spec(paused=True)}, "Paused"),
    ("deleting", {"deleting": True}, "Deleting"),
    ("a switch is moving", {"switches": (_switch_object(),)}, "SwitchInProgress"),
    (
        "a notice is pending",
        {"notices": (Notice("i-0000000000000000p", NoticeKind.REBALANCE, ago(10)),)},
        "NoticePending",
    ),
    (
        "a rebalance replica is up",
        {
            "replicas": (
                ReplicaObject("web-rebalance", "uid-r", ReplicaReason.REBALANCE, ago(30), managed=True),
            )
        },
        "RebalanceInProgress",
    ),
    ("no primary", {"instances": (), "serving": None}, "NoHealthyPrimary"),
    ("unhealthy primary", {"current": primary(healthy=False)}, "NoHealthyPrimary"),
    ("traffic elsewhere", {"serving": "i-0000000000000other"}, "NoHealthyPrimary"),
    (
        "two primaries",
        {"instances": (primary(), primary(B, instance_id="i-000000000000000p2"))},
        "NoHealthyPrimary",
    ),
    ("cooling down after a switch", {"last_switch_at": ago(600)}, "Cooldown"),
    ("cooling down after a launch", {"current": primary(age=600)}, "Cooldown"),
]


@pytest.mark.parametrize(("case", "fields", "reason"), HOLDS, ids=[h[0] for h in HOLDS])
def test_it_does_not_decide_when_it_must_not(case: str, fields: dict[str, Any], reason: str) -> None:
    d = decide(view(**fields), market(CHEAP_B), NOW)
    assert d.verdict is Verdict.HOLD, d
    assert d.reason == reason
    assert d.switch_target() is None


def test_a_finished_switch_does_not_hold_decisions() -> None:
    d = decide(view(switches=(_switch_object(final=True),)), market(CHEAP_B), NOW)
    assert d.verdict is Verdict.SWITCH


def test_cooldown_counts_from_the_later_of_the_last_switch_and_the_launch() -> None:
    ok = decide(view(current=primary(age=1801), last_switch_at=ago(3600)), market(CHEAP_B), NOW)
    assert ok.verdict is Verdict.SWITCH
    not_from_launch = DecisionSettings(cooldown_from_launch=False)
    assert decide(view(current=primary(age=60)), market(CHEAP_B), NOW, not_from_launch).switch
    assert decide(
        view(agent_spec=spec(policy={"cooldownSeconds": 0}), current=primary(age=10)), market(CHEAP_B), NOW
    ).switch


def test_no_price_for_the_current_pool_means_no_decision() -> None:
    d = decide(view(), market({B: 0.03, C: 0.04}), NOW)
    assert (d.verdict, d.reason) == (Verdict.HOLD, "NoMarketData")


CASES: list[tuple[str, dict[str, Any], dict[str, Any], Verdict, str, str | None]] = [
    # (case, view fields, market args, verdict, reason, target)
    ("cheaper pool", {}, {"prices": CHEAP_B}, Verdict.SWITCH, "Cheaper", B),
    ("current is cheapest", {}, {"prices": {A: 0.03, B: 0.05, C: 0.04}}, Verdict.STAY, "CurrentIsBest", None),
    (
        "saving below minSavingsPercent",
        {},
        {"prices": {A: 0.05, B: 0.047, C: 0.06}},
        Verdict.STAY,
        "SavingTooSmall",
        None,
    ),
    (
        "saving below the hysteresis even with minSavingsPercent 0",
        {"agent_spec": spec(policy={"minSavingsPercent": 0})},
        {"prices": {A: 0.05, B: 0.048, C: 0.06}},
        Verdict.STAY,
        "SavingTooSmall",
        None,
    ),
    (
        "a move that would not pay back its cutover downtime",
        {"agent_spec": spec(policy={"downtimeCostPerHour": 1000})},
        {"prices": {A: 0.10, B: 0.05, C: 0.2}},
        Verdict.STAY,
        "WouldNotPayBack",
        None,
    ),
    (
        "back to spot from an on-demand fallback",
        {"current": primary(on_demand=True)},
        {"prices": CHEAP_B},
        Verdict.SWITCH,
        "ReturnToSpot",
        B,
    ),
    (
        "leave a pool above 50 % risk for the best eligible one",
        {},
        {"prices": {A: 0.02, B: 0.05, C: 0.04}, "risks": {A: 0.6, B: 0.05, C: 0.3}},
        Verdict.SWITCH,
        "RiskTooHigh",
        C,
    ),
    (
        "a 20-50 % pool is eligible when it saves more than half",
        {},
        {"prices": {A: 0.05, B: 0.03, C: 0.06}, "risks": {B: 0.3}},
        Verdict.SWITCH,
        "Cheaper",
        B,
    ),
    (
        "a 20-50 % pool saving less than half is not",
        {},
        {"prices": {A: 0.06, B: 0.055, C: 0.07}, "risks": {B: 0.3}},
        Verdict.STAY,
        "CurrentIsBest",
        None,
    ),
    (
        "maxInterruptionRisk rules a cheap pool out",
        {"agent_spec": spec(policy={"maxInterruptionRisk": 0.1})},
        {"prices": {A: 0.05, B: 0.02, C: 0.04}, "risks": {B: 0.15}},
        Verdict.SWITCH,
        "Cheaper",
        C,
    ),
    (
        "a pool that refused capacity is never the target",
        {},
        {"prices": {A: 0.05, B: 0.02, C: 0.04}, "unavailable": (B,)},
        Verdict.SWITCH,
        "Cheaper",
        C,
    ),
    (
        "nothing else eligible",
        {},
        {"prices": {A: 0.05, B: 0.02, C: 0.03}, "unavailable": (B, C)},
        Verdict.STAY,
        "NoEligiblePool",
        None,
    ),
    (
        "every spot pool too risky: on-demand in the same zone",
        {},
        {"prices": CHEAP_B, "risks": {A: 0.7, B: 0.9, C: 0.8}},
        Verdict.SWITCH,
        "RiskTooHigh",
        f"{A}/on-demand",
    ),
    (
        "every spot pool too risky and no on-demand fallback",
        {"agent_spec": spec(policy={"onDemandFallback": False})},
        {"prices": CHEAP_B, "risks": {A: 0.7, B: 0.9, C: 0.8}},
        Verdict.STAY,
        "RiskTooHighNoAlternative",
        None,
    ),
    (
        "risk priced in: a safer pool at the same price wins when downtime is dear",
        {"agent_spec": spec(policy={"downtimeCostPerHour": 50})},
        {"prices": {A: 0.05, B: 0.05, C: 0.2}, "risks": {A: 0.15, B: 0.01}},
        Verdict.SWITCH,
        "Cheaper",
        B,
    ),
]


@pytest.mark.parametrize(
    ("case", "fields", "market_args", "verdict", "reason", "target"), CASES, ids=[c[0] for c in CASES]
)
def test_decision_table(
    case: str,
    fields: dict[str, Any],
    market_args: dict[str, Any],
    verdict: Verdict,
    reason: str,
    target: str | None,
) -> None:
    d = decide(view(**fields), market(**market_args), NOW)
    assert (d.verdict, d.reason) == (verdict, reason), d.message
    assert (str(d.target) if d.switch else None) == target
    assert d.considered, "a decision records the pools it weighed"
    assert d.considered[0].pool == d.current


def test_a_decision_records_its_inputs_and_maps_to_a_switch_request() -> None:
    d = decide(view(), market(CHEAP_B, risks={C: 0.3}), NOW)
    record = json.loads(json.dumps(d.to_record()))
    assert record["verdict"] == "switch" and record["target"] == B and record["reason"] == "Cheaper"
    by_pool = {c["pool"]: c for c in record["considered"] if c["lifecycle"] == "spot"}
    assert set(by_pool) == {A, B, C}
    assert by_pool[C]["risk"] == pytest.approx(0.3)
    assert d.saving_percent is not None and d.saving_percent > 10
    assert d.switch_target() == SwitchTarget(kind=TargetKind.POOL, pool=B)
    to_od = decide(view(), market(CHEAP_B, risks={A: 0.7, B: 0.9, C: 0.8}), NOW)
    assert to_od.switch_target() == SwitchTarget(kind=TargetKind.ON_DEMAND, pool=A)


def test_ineligible_pools_say_why() -> None:
    d = decide(
        view(agent_spec=spec(policy={"maxInterruptionRisk": 0.1})),
        market({A: 0.05, B: 0.02, C: 0.055}, risks={B: 0.15, C: 0.6}, unavailable=()),
        NOW,
    )
    why = {str(c.pool): c.why_not for c in d.considered}
    assert "maxInterruptionRisk" in why[B]
    assert "maxInterruptionRisk" in why[C]


def test_data_volumes_keep_the_target_in_the_primary_zone() -> None:
    two_types = spec(
        instanceTypes=["m5.large", "m5a.large"],
        dataVolumes=[{"volumeId": "vol-0123456789abcdef0", "deviceName": "/dev/sdf"}],
    )
    prices = {A: 0.05, B: 0.02, "m5a.large.us-east-1a": 0.03}
    d = decide(
        view(agent_spec=two_types), market(prices, on_demand={"m5.large": 0.1, "m5a.large": 0.09}), NOW
    )
    assert d.switch and str(d.target) == "m5a.large.us-east-1a"


def test_expected_cost_adds_the_price_of_interruptions() -> None:
    policy = spec(policy={"downtimeCostPerHour": 30}).policy
    m = market({A: 0.05}, risks={A: 0.2})
    cost = hourly_cost(Pool.parse(A), m, policy)
    per = 0.05 * DEFAULT_DECISION_SETTINGS.interruption_overhead_hours + 30 * (
        DEFAULT_DECISION_SETTINGS.interruption_downtime_hours
    )
    assert cost == pytest.approx(0.05 + hazard(0.2) * per)
    assert hazard(0.2) == pytest.approx(0.2231, abs=1e-4)  # -ln(0.8): the constant-hazard reading of 20 %/h
    assert hazard(0.2, horizon_hours=2.0) == pytest.approx(hazard(0.2) / 2)


# ------------------------------------------------------------------------------------------- properties

POOLS = [A, B, C, "m5a.large.us-east-1a", "m5a.large.us-east-1b"]
TWO_TYPES = {"instanceTypes": ["m5.large", "m5a.large"], "zones": ["us-east-1a", "us-east-1b", "us-east-1c"]}


@st.composite
def situations(draw: st.DrawFn) -> tuple[AgentView, Market]:
    prices = {p: draw(st.floats(0.005, 0.12)) for p in POOLS}
    risks = {p: draw(st.sampled_from([0.0, 0.01, 0.05, 0.15, 0.25, 0.45, 0.55, 0.9])) for p in POOLS}
    unavailable = frozenset(Pool.parse(p) for p in POOLS if draw(st.booleans()) and draw(st.booleans()))
    quotes = {Pool.parse(p): PoolQuote(Pool.parse(p), prices[p], risks[p]) for p in POOLS}
    m = Market(quotes, {"m5.large": 0.10, "m5a.large": 0.09}, unavailable)
    policy = {
        "minSavingsPercent": draw(st.sampled_from([0, 5, 10, 30])),
        "maxInterruptionRisk": draw(st.sampled_from([0.05, 0.2, 0.5, 1.0])),
        "cooldownSeconds": draw(st.sampled_from([0, 600, 1800])),
        "downtimeCostPerHour": draw(st.sampled_from([0, 5, 100])),
        "onDemandFallback": draw(st.booleans()),
    }
    agent = spec(**TWO_TYPES, policy=policy)
    where = draw(st.sampled_from(POOLS))
    on_demand = draw(st.booleans()) and draw(st.booleans())
    current = primary(where, age=draw(st.sampled_from([60, 1200, 4000])), on_demand=on_demand)
    last = draw(st.sampled_from([None, 300, 1000, 5000]))
    v = view(agent_spec=agent, current=current, last_switch_at=ago(last) if last is not None else None)
    return v, m


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(situations())
def test_never_chooses_an_ineligible_pool_or_decides_within_cooldown(
    situation: tuple[AgentView, Market],
) -> None:
    v, m = situation
    d = decide(v, m, NOW)
    current = v.instances[0]
    marks = [x for x in (v.last_switch_at, current.launched_at) if x is not None]
    in_cooldown = max(marks) + timedelta(seconds=v.spec.policy.cooldown_seconds) > NOW
    if in_cooldown:
        assert d.verdict is Verdict.HOLD and d.reason == "Cooldown"
    if not d.switch:
        return
    target = d.target
    assert target is not None and target != current.pool
    assert in_candidates(v.spec, target) is None
    assert target not in m.unavailable
    if target.is_spot:
        assert eligible(target, m, v.spec.policy)
        assert m.risk(target) <= v.spec.policy.max_interruption_risk
    else:
        assert d.reason == "RiskTooHigh" and v.spec.policy.on_demand_fallback


def _after_switch(v: AgentView, d: Decision, at: Any) -> AgentView:
    assert d.target is not None
    moved = replace(
        v.instances[0], instance_id="i-00000000000000new", pool=d.target, launched_at=at, last_heartbeat=at
    )
    return replace(v, instances=(moved,), serving=moved.instance_id, last_switch_at=at)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    situations(),
    st.sampled_from(
        [DEFAULT_DECISION_SETTINGS, DecisionSettings(hysteresis_percent=0.0, require_payback=False)]
    ),
)
def test_never_flaps_on_a_constant_market(situation: tuple[AgentView, Market], how: DecisionSettings) -> None:
    """Decide every cycle on an unchanging market, carrying each switch out: at most one switch."""
    v, m = situation
    now = NOW
    switches = 0
    for _ in range(12):
        d = decide(v, m, now, how)
        if d.switch:
            switches += 1
            v = _after_switch(v, d, now)
        now += timedelta(seconds=max(v.spec.policy.cooldown_seconds, 300) + 1)
        v = replace(v, instances=(replace(v.instances[0], last_heartbeat=now),))
    assert switches <= 1


@settings(max_examples=100, deadline=None)
@given(situations(), st.integers(0, 1799))
def test_no_decision_switch_within_cooldown_after_a_switch(
    situation: tuple[AgentView, Market], after: int
) -> None:
    v, m = situation
    v = replace(v, spec=spec(**TWO_TYPES, policy={"cooldownSeconds": 1800}), last_switch_at=NOW)
    later = NOW + timedelta(seconds=after)
    v = replace(v, instances=(replace(v.instances[0], launched_at=ago(7200), last_heartbeat=later),))
    d = decide(v, m, later)
    assert (d.verdict, d.reason) == (Verdict.HOLD, "Cooldown")


def test_capacity_spot_target_lifecycle_is_spot() -> None:
    d = decide(view(), market(CHEAP_B), NOW)
    assert d.target is not None and d.target.lifecycle is Capacity.SPOT
