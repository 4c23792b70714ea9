"""The model registry table: trained scorer versions and which one is active, which one the fallback.

Simple functions over the caller's session, for the registry logic built on top of them
(``decisions.registry``). Invariants, enforced by partial unique indexes as well as here: per model
name at most one ``active`` and at most one ``fallback`` version.

- :func:`save_version` stores a version (``inactive``);
- :func:`activate` makes a version active; the previously active one becomes the fallback and the
  previous fallback goes inactive;
- :func:`rollback` makes the fallback active; the active one goes inactive (and out of the activation
  history) and the most recently activated of the remaining versions becomes the fallback, if any;
- :func:`active`, :func:`fallback`, :func:`get_version`, :func:`list_versions` read.

Status changes lock the name's rows (``SELECT ... FOR UPDATE`` on PostgreSQL), so two operators
activating at once serialise instead of failing on the unique index. The caller commits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .models import ModelVersionRow


class ModelVersionNotFound(LookupError):
    pass


@dataclass(frozen=True)
class ModelVersion:
    """A stored version, without its artifact bytes (see :func:`artifact`)."""

    name: str
    version: str
    created_at: datetime
    status: str  # active | fallback | inactive
    sha256: str
    trained_from: datetime | None = None
    trained_to: datetime | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    artifact_path: str | None = None
    has_artifact: bool = False
    activated_at: datetime | None = None


def _snapshot(row: ModelVersionRow, has_artifact: bool) -> ModelVersion:
    return ModelVersion(
        name=row.name,
        version=row.version,
        created_at=row.created_at,
        status=row.status,
        sha256=row.sha256,
        trained_from=row.trained_from,
        trained_to=row.trained_to,
        metrics=dict(row.metrics),
        artifact_path=row.artifact_path,
        has_artifact=has_artifact,
        activated_at=row.activated_at,
    )


_COLUMNS = [c for c in ModelVersionRow.__table__.c if c.name != "artifact"]


def _select_versions(name: str) -> Any:
    return select(*_COLUMNS, ModelVersionRow.artifact.is_not(None).label("has_artifact")).where(
        ModelVersionRow.name == name
    )


def _rows(session: Session, stmt: Any) -> list[ModelVersion]:
    out = []
    for row in session.execute(stmt).mappings():
        values = {k: v for k, v in row.items() if k not in ("id", "has_artifact")}
        out.append(_snapshot(ModelVersionRow(**values), bool(row["has_artifact"])))
    return out


def save_version(
    session: Session,
    name: str,
    version: str,
    created_at: datetime,
    *,
    artifact: bytes | None = None,
    artifact_path: str | None = None,
    sha256: str | None = None,
    metrics: Mapping[str, Any] | None = None,
    trained_from: datetime | None = None,
    trained_to: datetime | None = None,
) -> ModelVersion:
    """Store a new, inactive version. Give the bytes, or a path (then ``sha256`` of the file too).

    Raises ``sqlalchemy.exc.IntegrityError`` if (name, version) exists.
    """
    if artifact is None and artifact_path is None:
        raise ValueError("a model version needs its artifact bytes or an artifact path")
    if artifact is not None:
        digest = hashlib.sha256(artifact).hexdigest()
        if sha256 is not None and sha256 != digest:
            raise ValueError("sha256 does not match the artifact")
        sha256 = digest
    if sha256 is None:
        raise ValueError("an artifact path needs the sha256 of its content")
    row = ModelVersionRow(
        name=name,
        version=version,
        created_at=created_at,
        trained_from=trained_from,
        trained_to=trained_to,
        metrics=dict(metrics or {}),
        artifact=artifact,
        artifact_path=artifact_path,
        sha256=sha256,
        status="inactive",
    )
    session.add(row)
    session.flush()
    return _snapshot(row, artifact is not None)


def list_versions(session: Session, name: str) -> list[ModelVersion]:
    """Every version of ``name``, oldest first."""
    return _rows(session, _select_versions(name).order_by(ModelVersionRow.created_at, ModelVersionRow.id))


def get_version(session: Session, name: str, version: str) -> ModelVersion:
    found = _rows(session, _select_versions(name).where(ModelVersionRow.version == version))
    if not found:
        raise ModelVersionNotFound(f"no model {name!r} version {version!r}")
    return found[0]


def artifact(session: Session, name: str, version: str) -> bytes | None:
    """The stored bytes of a version (None when it is stored by path)."""
    stmt = select(ModelVersionRow.artifact).where(
        ModelVersionRow.name == name, ModelVersionRow.version == version
    )
    found = session.execute(stmt).one_or_none()
    if found is None:
        raise ModelVersionNotFound(f"no model {name!r} version {version!r}")
    return found[0]


def _with_status(session: Session, name: str, status: str) -> ModelVersion | None:
    found = _rows(session, _select_versions(name).where(ModelVersionRow.status == status))
    return found[0] if found else None


def active(session: Session, name: str) -> ModelVersion | None:
    return _with_status(session, name, "active")


def fallback(session: Session, name: str) -> ModelVersion | None:
    return _with_status(session, name, "fallback")


def _lock(session: Session, name: str) -> dict[str, tuple[str, datetime | None]]:
    """Lock the name's rows; version -> (status, activated_at)."""
    stmt = (
        select(ModelVersionRow.version, ModelVersionRow.status, ModelVersionRow.activated_at)
        .where(ModelVersionRow.name == name)
        .order_by(ModelVersionRow.id)
        .with_for_update()
    )
    return {v: (s, a) for v, s, a in session.execute(stmt)}


def _set(session: Session, name: str, version: str, status: str, **also: Any) -> None:
    values: dict[str, Any] = {"status": status, **also}
    session.execute(
        update(ModelVersionRow)
        .where(ModelVersionRow.name == name, ModelVersionRow.version == version)
        .values(**values)
    )


def activate(session: Session, name: str, version: str, now: datetime) -> ModelVersion:
    """Make ``version`` active; the active one becomes the fallback, the old fallback inactive."""
    rows = _lock(session, name)
    if version not in rows:
        raise ModelVersionNotFound(f"no model {name!r} version {version!r}")
    if rows[version][0] == "active":
        return get_version(session, name, version)
    current = next((v for v, (s, _) in rows.items() if s == "active"), None)
    previous_fallback = next((v for v, (s, _) in rows.items() if s == "fallback"), None)
    # Order matters: each step keeps "one active, one fallback" true for the unique indexes.
    if previous_fallback is not None:
        _set(session, name, previous_fallback, "inactive")
    if current is not None:
        _set(session, name, current, "fallback")
    _set(session, name, version, "active", activated_at=now)
    return get_version(session, name, version)


def rollback(session: Session, name: str) -> ModelVersion:
    """Make the fallback active again (see the module docstring). Raises if there is no fallback."""
    rows = _lock(session, name)
    current = next((v for v, (s, _) in rows.items() if s == "active"), None)
    back = next((v for v, (s, _) in rows.items() if s == "fallback"), None)
    if back is None:
        raise ModelVersionNotFound(f"model {name!r} has no fallback to roll back to")
    if current is not None:
        # Rolled back: it leaves the activation history, so it never comes back as a fallback.
        _set(session, name, current, "inactive", activated_at=None)
    _set(session, name, back, "active")
    candidates = [
        (activated, v)
        for v, (s, activated) in rows.items()
        if s == "inactive" and activated is not None and v not in (current, back)
    ]
    if candidates:
        _set(session, name, max(candidates)[1], "fallback")
    return get_version(session, name, back)
