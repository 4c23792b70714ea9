"""Savings so far: what each SpotAgent's instances cost while the sandbox watched, against running its
primary on on-demand for the same time. Pure: fed one snapshot and the seconds since the last one.

Costs count every live instance the agent owns (a standby costs money too) at its pool's latest spot
price from the store; the on-demand price is the one the operator compares with in the agent's status
(``primary.hourlyPrice + savings.hourlyUsd``). Seconds of an instance whose price is not known yet are
counted apart, not guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from spot_operator.sandbox.snapshot import AgentSeen, InstanceSeen, Snapshot

HOURS_PER_MONTH = 730.0


@dataclass
class AgentLedger:
    seconds: float = 0.0
    on_demand_usd: float = 0.0
    cost_usd: float = 0.0
    unpriced_seconds: float = 0.0
    on_demand_hourly: float | None = None
    hourly_saving: float | None = None  # the operator's own figure, from the status
    percent: float | None = None

    @property
    def saved_usd(self) -> float:
        return self.on_demand_usd - self.cost_usd

    @property
    def saved_percent(self) -> float | None:
        return 100.0 * self.saved_usd / self.on_demand_usd if self.on_demand_usd else None


@dataclass
class Ledger:
    agents: dict[str, AgentLedger] = field(default_factory=dict)

    def accrue(self, snap: Snapshot, seconds: float) -> None:
        if seconds <= 0:
            return
        for agent in snap.agents.values():
            on_demand = agent.on_demand_price
            if on_demand is None:
                continue
            book = self.agents.setdefault(agent.name, AgentLedger())
            book.seconds += seconds
            book.on_demand_usd += on_demand * seconds / 3600
            book.on_demand_hourly = on_demand
            book.hourly_saving = agent.savings_hourly
            book.percent = agent.savings_percent
            for inst in snap.live(agent.name):
                price = instance_price(inst, agent, snap)
                if price is None:
                    book.unpriced_seconds += seconds
                else:
                    book.cost_usd += price * seconds / 3600

    @property
    def saved_usd(self) -> float:
        return sum(a.saved_usd for a in self.agents.values())


def instance_price(inst: InstanceSeen, agent: AgentSeen, snap: Snapshot) -> float | None:
    """The hourly price of one instance: its spot pool's latest price, the status's for the primary, or
    the on-demand price for an on-demand instance of the primary's type."""
    if inst.lifecycle == "on-demand":
        same_type = agent.primary_pool and agent.primary_pool.startswith(inst.pool.rsplit(".", 1)[0] + ".")
        return agent.on_demand_price if same_type else None
    price = snap.prices.get(inst.pool)
    if price is None and inst.instance_id == agent.primary_id:
        price = agent.hourly_price
    return price


def monthly(hourly: float) -> float:
    return hourly * HOURS_PER_MONTH
