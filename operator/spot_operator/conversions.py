"""Kubernetes object bodies (as kopf and the API give them) to the planner's frozen objects. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from spot_operator.api import (
    ReplicaReason,
    ReplicaStatus,
    SpotAgentSpec,
    SpotAgentStatus,
    SwitchRequestSpec,
    SwitchRequestStatus,
)
from spot_operator.planning.model import Notice, NoticeKind, ReplicaObject, SwitchObject

CREATED_BY = "spotoptimizer.io/created-by"


def parse_time(value: object) -> datetime | None:
    if not value:
        return None
    stamp = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _meta(body: Mapping[str, Any]) -> Mapping[str, Any]:
    meta: Mapping[str, Any] = body.get("metadata") or {}
    return meta


def created_at(body: Mapping[str, Any]) -> datetime:
    return parse_time(_meta(body).get("creationTimestamp")) or datetime.now(UTC)


def managed(body: Mapping[str, Any]) -> bool:
    return (_meta(body).get("labels") or {}).get(CREATED_BY) == "operator"


def agent_name_of(body: Mapping[str, Any]) -> str | None:
    ref = (body.get("spec") or {}).get("agentRef") or {}
    name = ref.get("name")
    return str(name) if name else None


def replica_status(body: Mapping[str, Any]) -> ReplicaStatus | None:
    raw = body.get("status")
    return ReplicaStatus.model_validate(raw) if raw else None


def replica_from_body(body: Mapping[str, Any]) -> ReplicaObject:
    meta, spec = _meta(body), body.get("spec") or {}
    status = replica_status(body)
    return ReplicaObject(
        name=str(meta["name"]),
        uid=str(meta.get("uid", "")),
        reason=ReplicaReason(spec.get("reason", "manual")),
        created_at=created_at(body),
        pool=spec.get("pool"),
        phase=status.phase if status and body.get("status", {}).get("phase") else None,
        instance_id=status.instance_id if status else None,
        ready_at=status.ready_at if status else None,
        managed=managed(body),
        deleting=bool(meta.get("deletionTimestamp")),
    )


def switch_from_body(body: Mapping[str, Any]) -> SwitchObject:
    """Raises pydantic.ValidationError when the spec is not valid (the caller reports it)."""
    meta = _meta(body)
    raw_status = body.get("status") or {}
    return SwitchObject(
        name=str(meta["name"]),
        uid=str(meta.get("uid", "")),
        spec=SwitchRequestSpec.model_validate(body.get("spec") or {}),
        created_at=created_at(body),
        status=SwitchRequestStatus.model_validate(raw_status),
        managed=managed(body),
    )


def agent_spec(body: Mapping[str, Any]) -> SpotAgentSpec:
    return SpotAgentSpec.model_validate(body.get("spec") or {})


def agent_status(body: Mapping[str, Any]) -> SpotAgentStatus:
    raw = body.get("status") or {}
    try:
        return SpotAgentStatus.model_validate(raw)
    except ValueError:
        return SpotAgentStatus()


def pending_notices(status: SpotAgentStatus) -> list[Notice]:
    out = []
    for n in status.pending_notices:
        try:
            kind = NoticeKind(n.kind)
        except ValueError:
            continue
        out.append(Notice(n.instance_id, kind, n.received_at, n.deadline, n.source))
    return out
