"""SpotAgent handlers: one level-based reconcile for create, update, resume and the timer; a finalizer."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import kopf

from spot_operator.agent_api.tokens import generate_token
from spot_operator.errors import CloudError, InvalidRequest
from spot_operator.handlers.common import SPOTAGENTS, TIMER_SECONDS, TOKEN_KEY, operator_of, token_secret_name
from spot_operator.planning.conditions import set_condition
from spot_operator.runtime.operator import InvalidSpec, Operator
from spot_operator.state import AgentState

log = logging.getLogger(__name__)


@kopf.index(*SPOTAGENTS, id="spotagent_uids")
def spotagent_uids(
    *, namespace: str | None, name: str, uid: str, **_: Any
) -> dict[tuple[str | None, str], str]:
    return {(namespace, name): uid}


@kopf.on.resume(*SPOTAGENTS, id="spotagent_resume")
@kopf.on.create(*SPOTAGENTS, id="spotagent_create")
@kopf.on.update(*SPOTAGENTS, field="spec", id="spotagent_update")
@kopf.timer(*SPOTAGENTS, interval=TIMER_SECONDS, initial_delay=TIMER_SECONDS, id="spotagent_timer")
async def spotagent_changed(*, body: kopf.Body, memo: kopf.Memo, patch: kopf.Patch, **kwargs: Any) -> None:
    # kopf passes every index by its id; these two are filled before any handler runs.
    await reconcile_spotagent(
        operator_of(memo), body, patch, kwargs.get("replicas_by_agent"), kwargs.get("switches_by_agent")
    )


async def reconcile_spotagent(
    op: Operator,
    body: kopf.Body,
    patch: kopf.Patch,
    replicas_by_agent: kopf.Index[Any, Any] | None = None,
    switches_by_agent: kopf.Index[Any, Any] | None = None,
) -> None:
    key = f"{body.metadata.namespace}/{body.metadata.name}"
    fresh = key not in op.agents or op.agents[key].ref.uid != body.metadata.uid
    try:
        state = op.upsert_agent(body)
    except InvalidSpec as exc:
        conditions = set_condition(
            [], "Ready", False, "InvalidSpec", str(exc), op.now(), body.metadata.get("generation")
        )
        patch.status["phase"] = "Degraded"
        patch.status["conditions"] = [c.to_wire() for c in conditions]
        raise kopf.PermanentError(f"invalid spec: {exc}") from exc
    if fresh:
        index_key = (state.ref.namespace, state.ref.name)
        op.seed_children(
            state,
            list(replicas_by_agent.get(index_key, [])) if replicas_by_agent is not None else [],
            list(switches_by_agent.get(index_key, [])) if switches_by_agent is not None else [],
        )
    if op.tokens is not None and (fresh or not op.tokens.knows(state.key)):
        try:
            await ensure_agent_token(op, state)
        except CloudError as exc:  # the agent API refuses its agent until then; the reconcile goes on
            log.warning("%s: no agent token (tried again at the next change or timer): %s", key, exc)
            with contextlib.suppress(CloudError):
                await op.objects.event(
                    "SpotAgent",
                    state.ref.namespace,
                    state.ref.name,
                    state.ref.uid,
                    "AgentTokenUnavailable",
                    str(exc),
                    True,
                )
    await op.reconcile(key)


async def ensure_agent_token(op: Operator, state: AgentState) -> None:
    """The per-agent bearer token lives in a Secret owned by the SpotAgent; the agent API trusts it."""
    if op.secrets is None or op.tokens is None:
        return
    name = token_secret_name(state.ref.name)
    data = await op.secrets.read_secret(state.ref.namespace, name)
    token = (data or {}).get(TOKEN_KEY)
    if data is not None and not token:
        raise InvalidRequest(
            f"Secret {state.ref.namespace}/{name} has no {TOKEN_KEY!r} key: delete it for a new token",
            "AgentTokenUnavailable",
        )
    if not token:
        token = generate_token()
        await op.secrets.create_secret(
            state.ref, name, {TOKEN_KEY: token}, {"spotoptimizer.io/token": "agent"}
        )
    op.tokens.set(state.key, token)


@kopf.on.delete(*SPOTAGENTS, id="spotagent_delete")
async def spotagent_delete(*, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    op = operator_of(memo)
    key = f"{body.metadata.namespace}/{body.metadata.name}"
    try:
        op.upsert_agent(body)
    except InvalidSpec:
        op.drop_agent(key)  # nothing valid was ever launched for it
        return
    result = await op.reconcile(key)
    if result is not None and not result.plan.released:
        live = [i for i in op.agents[key].instances.values() if i.live]
        raise kopf.TemporaryError(f"waiting for {len(live)} instance(s) to terminate", delay=5)
    op.drop_agent(key)
    if op.tokens is not None:
        op.tokens.revoke(key)
