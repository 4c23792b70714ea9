"""plan(view, market, now) -> Plan: the whole decision for one SpotAgent, pure and synchronous.

Order matters and is fixed: notices open emergency switches first, so that the switch machine can
act on them in the same plan; then switches advance; then the one-primary invariant is repaired where
no switch already provides for it; then replicas; then whatever nobody needs is terminated.
"""

from __future__ import annotations

from datetime import datetime

from spot_operator.planning.actions import Plan
from spot_operator.planning.cleanup import plan_cleanup
from spot_operator.planning.deletion import plan_deletion
from spot_operator.planning.facts import Builder, Facts
from spot_operator.planning.failover import plan_notices
from spot_operator.planning.model import AgentView, Market, PlannerSettings
from spot_operator.planning.primary import plan_primary
from spot_operator.planning.replicas import plan_replicas
from spot_operator.planning.status import agent_status
from spot_operator.planning.switching import plan_switches

DEFAULT_SETTINGS = PlannerSettings()


def plan(
    view: AgentView, market: Market, now: datetime, settings: PlannerSettings = DEFAULT_SETTINGS
) -> Plan:
    facts = Facts(view, market, now, settings)
    b = Builder(facts)
    replicas = list(view.replicas)
    switches = list(view.switches)

    if view.deleting:
        released = plan_deletion(facts, b)
        status = agent_status(facts, b, replicas, switches, view.status)
        return Plan(
            tuple(b.actions),
            status,
            events=tuple(b.events),
            requeue_after=b.requeue_after,
            released=released,
            now=now,
        )

    opened, rebalance_replicas = plan_notices(facts, b, switches)
    switches += opened
    replicas += rebalance_replicas
    plan_switches(switches, facts, b)
    repair = plan_primary(facts, b, switches)
    if repair is not None:
        switches.append(repair)
        plan_switches([repair], facts, b)
    created, rebalance_switches = plan_replicas(facts, b, replicas, switches)
    replicas += created
    switches += rebalance_switches
    plan_cleanup(facts, b, replicas, switches)

    status = agent_status(facts, b, replicas, switches, view.status)
    return Plan(
        actions=tuple(b.actions),
        status=status,
        replica_status=b.replica_status,
        switch_status=b.switch_status,
        events=tuple(b.events),
        requeue_after=b.requeue_after,
        now=now,
    )
