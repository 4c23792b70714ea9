"""Interruption events, switch history and decisions: written once (idempotently), read as snapshots."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from spot_operator.api import Capacity
from spot_operator.planning.model import Pool
from spot_operator.ports import DecisionRecord, InterruptionRecord, SwitchRecord

from .db import is_postgresql, rowcount
from .models import DecisionRow, InterruptionRow, PoolRow, SwitchRow
from .pools import ensure_pools


def _insert(session: Session) -> Any:
    return postgresql.insert if is_postgresql(session) else sqlite.insert


def split_agent(agent: str) -> tuple[str, str]:
    """'<namespace>/<name>' -> (namespace, name)."""
    namespace, sep, name = agent.partition("/")
    if not sep or not namespace or not name:
        raise ValueError(f"agent must be '<namespace>/<name>', got {agent!r}")
    return namespace, name


def _json(value: object) -> Any:
    """A JSON-safe copy: datetimes as ISO strings, mappings and sequences recursively."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def record_interruption(session: Session, event: InterruptionRecord, recorded_at: datetime) -> bool:
    """Store a notice; the same (instance, kind, time) twice is stored once. True if it was new."""
    pool_id = None
    if event.pool is not None:
        key = (event.pool.instance_type, event.pool.zone)
        pool_id = ensure_pools(session, [key])[key]
    stmt = (
        _insert(session)(InterruptionRow)
        .values(
            pool_id=pool_id,
            instance_id=event.instance_id,
            kind=event.kind,
            at=event.at,
            source=event.source,
            recorded_at=recorded_at,
        )
        .on_conflict_do_nothing(index_elements=["instance_id", "kind", "at"])
    )
    return rowcount(session.execute(stmt)) > 0


def interruptions(
    session: Session, pools: Sequence[Pool] | None = None, since: datetime | None = None
) -> list[InterruptionRecord]:
    stmt = (
        select(InterruptionRow, PoolRow)
        .outerjoin(PoolRow, InterruptionRow.pool_id == PoolRow.id)
        .order_by(InterruptionRow.at, InterruptionRow.id)
    )
    if since is not None:
        stmt = stmt.where(InterruptionRow.at >= since)
    if pools is not None:
        keys = sorted({(p.instance_type, p.zone) for p in pools})
        stmt = stmt.where(tuple_(PoolRow.instance_type, PoolRow.zone).in_(keys))
    out = []
    for row, pool in session.execute(stmt):
        where = Pool(pool.instance_type, pool.zone) if pool is not None else None
        out.append(InterruptionRecord(row.instance_id, row.kind, row.at, where, row.source))
    return out


def record_switch(session: Session, switch: SwitchRecord) -> None:
    """Insert or update (by agent and switch name) one switch."""
    namespace, name = split_agent(switch.agent)
    pools = [switch.to_pool, *([switch.from_pool] if switch.from_pool else [])]
    ids = ensure_pools(session, [(p.instance_type, p.zone) for p in pools])
    values = {
        "agent_namespace": namespace,
        "agent_name": name,
        "switch_name": switch.switch,
        "reason": switch.reason,
        "from_pool_id": ids[(switch.from_pool.instance_type, switch.from_pool.zone)]
        if switch.from_pool
        else None,
        "from_lifecycle": str(switch.from_pool.lifecycle) if switch.from_pool else None,
        "to_pool_id": ids[(switch.to_pool.instance_type, switch.to_pool.zone)],
        "to_lifecycle": str(switch.to_pool.lifecycle),
        "started_at": switch.started_at,
        "completed_at": switch.completed_at,
        "launch_seconds": switch.launch_seconds,
        "cutover_seconds": switch.cutover_seconds,
        "downtime_seconds": switch.downtime_seconds,
        "pre_state": _json(dict(switch.pre_state)),
        "post_state": _json(dict(switch.post_state)),
    }
    stmt = _insert(session)(SwitchRow).values(values)
    keys = ("agent_namespace", "agent_name", "switch_name")
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={k: getattr(stmt.excluded, k) for k in values if k not in keys},
    )
    session.execute(stmt)


def switches(session: Session, agent: str) -> list[SwitchRecord]:
    """The agent's switches, oldest first (by start)."""
    namespace, name = split_agent(agent)
    to_pool = aliased(PoolRow)
    from_pool = aliased(PoolRow)
    stmt = (
        select(SwitchRow, to_pool, from_pool)
        .join(to_pool, SwitchRow.to_pool_id == to_pool.id)
        .outerjoin(from_pool, SwitchRow.from_pool_id == from_pool.id)
        .where(SwitchRow.agent_namespace == namespace, SwitchRow.agent_name == name)
        .order_by(SwitchRow.started_at, SwitchRow.id)
    )
    out = []
    for row, to_p, from_p in session.execute(stmt):
        out.append(
            SwitchRecord(
                agent=agent,
                switch=row.switch_name,
                reason=row.reason,
                to_pool=Pool(to_p.instance_type, to_p.zone, Capacity(row.to_lifecycle)),
                started_at=row.started_at,
                from_pool=(
                    Pool(from_p.instance_type, from_p.zone, Capacity(row.from_lifecycle or Capacity.SPOT))
                    if from_p is not None
                    else None
                ),
                completed_at=row.completed_at,
                launch_seconds=row.launch_seconds,
                cutover_seconds=row.cutover_seconds,
                downtime_seconds=row.downtime_seconds,
                pre_state=dict(row.pre_state),
                post_state=dict(row.post_state),
            )
        )
    return out


def switched_agents(session: Session) -> list[str]:
    """Every agent ('<namespace>/<name>') with a recorded switch, sorted."""
    stmt = select(SwitchRow.agent_namespace, SwitchRow.agent_name).distinct()
    return sorted(f"{namespace}/{name}" for namespace, name in session.execute(stmt))


def record_decision(session: Session, decision: DecisionRecord) -> bool:
    """Store a decision; the same agent and instant twice is stored once. True if it was new."""
    namespace, name = split_agent(decision.agent)
    stmt = (
        _insert(session)(DecisionRow)
        .values(
            agent_namespace=namespace,
            agent_name=name,
            at=decision.at,
            model_name=decision.model_name,
            model_version=decision.model_version,
            inputs=_json(dict(decision.inputs)),
            scores=_json(dict(decision.scores)),
            choice=decision.choice,
            reason=decision.reason,
        )
        .on_conflict_do_nothing(index_elements=["agent_namespace", "agent_name", "at"])
    )
    return rowcount(session.execute(stmt)) > 0


def decisions(
    session: Session, agent: str, since: datetime | None = None, limit: int = 1000
) -> list[DecisionRecord]:
    """The agent's decisions, newest first."""
    namespace, name = split_agent(agent)
    stmt = select(DecisionRow).where(DecisionRow.agent_namespace == namespace, DecisionRow.agent_name == name)
    if since is not None:
        stmt = stmt.where(DecisionRow.at >= since)
    stmt = stmt.order_by(DecisionRow.at.desc(), DecisionRow.id.desc()).limit(limit)
    return [
        DecisionRecord(
            agent=agent,
            at=row.at,
            model_name=row.model_name,
            model_version=row.model_version,
            inputs=dict(row.inputs),
            scores=dict(row.scores),
            choice=row.choice,
            reason=row.reason,
        )
        for row in session.scalars(stmt)
    ]
