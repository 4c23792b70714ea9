"""Replica handlers: a Replica belongs to its SpotAgent's plan; reconciling it reconciles the agent."""

from __future__ import annotations

from typing import Any

import kopf

from spot_operator.conversions import agent_name_of
from spot_operator.handlers.common import REPLICAS, operator_of
from spot_operator.runtime.operator import Operator


@kopf.index(*REPLICAS, id="replicas_by_agent")
def replicas_by_agent(
    *, namespace: str | None, body: kopf.Body, **_: Any
) -> dict[tuple[str | None, str | None], dict[str, Any]]:
    return {(namespace, agent_name_of(body)): dict(body)}


@kopf.on.resume(*REPLICAS, id="replica_resume")
@kopf.on.create(*REPLICAS, id="replica_create")
@kopf.on.update(*REPLICAS, field="spec", id="replica_update")
async def replica_changed(*, body: kopf.Body, memo: kopf.Memo, patch: kopf.Patch, **_: Any) -> None:
    await reconcile_replica(operator_of(memo), body, patch)


async def reconcile_replica(op: Operator, body: kopf.Body, patch: kopf.Patch) -> None:
    state = op.upsert_replica(body, kick=False)
    if state is None:
        agent = agent_name_of(body)
        patch.status["message"] = f"SpotAgent {agent} not found in {body.metadata.namespace}"
        raise kopf.TemporaryError(f"SpotAgent {agent} not found (yet)", delay=15)
    await op.reconcile(state.key)


@kopf.on.delete(*REPLICAS, id="replica_delete")
async def replica_delete(*, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Terminate the standby's instance before the object goes (nothing left running unaccounted)."""
    op = operator_of(memo)
    state = op.upsert_replica(body, kick=False)
    if state is None or state.deleting:
        return  # its SpotAgent is gone or going: the agent's own finalizer terminates everything
    name = body.metadata.name
    await op.reconcile(state.key)
    live = [i for i in state.instances.values() if i.purpose == f"replica/{name}" and i.live]
    if live:
        raise kopf.TemporaryError(f"waiting for {live[0].instance_id} to terminate", delay=5)
    op.forget_replica(state.ref.namespace, state.ref.name, name)
