"""SwitchRequest handlers: validate, then let the agent's plan run the phase machine."""

from __future__ import annotations

from typing import Any

import kopf

from spot_operator.conversions import agent_name_of
from spot_operator.handlers.common import SWITCHREQUESTS, operator_of
from spot_operator.runtime.operator import InvalidSpec, Operator, invalid_switch_status


@kopf.index(*SWITCHREQUESTS, id="switches_by_agent")
def switches_by_agent(
    *, namespace: str | None, body: kopf.Body, **_: Any
) -> dict[tuple[str | None, str | None], dict[str, Any]]:
    return {(namespace, agent_name_of(body)): dict(body)}


@kopf.on.resume(*SWITCHREQUESTS, id="switchrequest_resume")
@kopf.on.create(*SWITCHREQUESTS, id="switchrequest_create")
async def switchrequest_changed(*, body: kopf.Body, memo: kopf.Memo, patch: kopf.Patch, **_: Any) -> None:
    await reconcile_switchrequest(operator_of(memo), body, patch)


async def reconcile_switchrequest(op: Operator, body: kopf.Body, patch: kopf.Patch) -> None:
    if (body.get("status") or {}).get("phase") in ("Completed", "Failed", "Superseded"):
        return  # a record of the past; nothing to do
    try:
        state = op.upsert_switch(body, kick=False)
    except InvalidSpec as exc:
        patch.status.update(invalid_switch_status(str(exc), op.now()).to_wire())
        return
    if state is None:
        agent = agent_name_of(body)
        patch.status["message"] = f"SpotAgent {agent} not found in {body.metadata.namespace}"
        raise kopf.TemporaryError(f"SpotAgent {agent} not found (yet)", delay=15)
    await op.reconcile(state.key)


@kopf.on.delete(*SWITCHREQUESTS, id="switchrequest_delete", optional=True)
async def switchrequest_delete(*, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    agent = agent_name_of(body)
    if agent:
        operator_of(memo).forget_switch(body.metadata.namespace or "default", agent, body.metadata.name or "")
