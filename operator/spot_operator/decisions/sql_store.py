"""A :class:`~spot_operator.decisions.registry.ModelStore` on the ``model_versions`` table.

Built on :mod:`spot_operator.storage.model_registry` (one transaction per call). The table keeps what a
registry record needs in its own columns (version, created, digest, training data range, metrics,
artifact); the rest of the record (kind, horizon, feature names, parameters, notes, size) travels in
the metrics document under ``"_record"``.

The pointer's ``serial`` here is a fingerprint of (active, fallback, when the active one was
activated): it changes whenever the pointer does, which is all a polling operator needs. Unlike the
filesystem store, the table always keeps one active model once there has been one: ``rollback`` needs
a fallback to return to (the scorer chain still answers with the rules if that model fails).
"""

from __future__ import annotations

import zlib
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from spot_operator.decisions.features import FEATURES
from spot_operator.decisions.registry import ActivePointer, ModelRecord, RegistryError, UnknownModel
from spot_operator.decisions.xgb import MODEL_KIND
from spot_operator.storage import model_registry as table

_RECORD = "_record"


def _record(row: table.ModelVersion) -> ModelRecord:
    metrics = dict(row.metrics)
    extra = metrics.pop(_RECORD, {})
    return ModelRecord(
        version=row.version,
        kind=str(extra.get("kind", MODEL_KIND)),
        created_at=row.created_at,
        sha256=row.sha256,
        size=int(extra.get("size", 0)),
        horizon_hours=float(extra.get("horizon_hours", 1.0)),
        features=tuple(extra.get("features", FEATURES)),
        metrics={k: float(v) for k, v in metrics.items()},
        data_from=row.trained_from,
        data_to=row.trained_to,
        params=dict(extra.get("params", {})),
        notes=str(extra.get("notes", "")),
    )


class SqlModelStore:
    """Implements :class:`ModelStore` for one model name in the operator's database."""

    def __init__(self, sessions: sessionmaker[Session], name: str = "interruption") -> None:
        self.sessions = sessions
        self.name = name

    def records(self) -> list[ModelRecord]:
        with self.sessions.begin() as session:
            return [_record(v) for v in table.list_versions(session, self.name)]

    def payload(self, version: str) -> bytes:
        with self.sessions.begin() as session:
            try:
                stored = table.artifact(session, self.name, version)
                row = table.get_version(session, self.name, version)
            except table.ModelVersionNotFound as exc:
                raise UnknownModel(str(exc)) from None
        if stored is not None:
            return stored
        if row.artifact_path is None:
            raise RegistryError(f"model {version!r} has neither bytes nor a path")
        return Path(row.artifact_path).read_bytes()

    def put(self, record: ModelRecord, payload: bytes) -> None:
        extra: dict[str, Any] = {
            "kind": record.kind,
            "size": record.size,
            "horizon_hours": record.horizon_hours,
            "features": list(record.features),
            "params": dict(record.params),
            "notes": record.notes,
        }
        try:
            with self.sessions.begin() as session:
                table.save_version(
                    session,
                    self.name,
                    record.version,
                    record.created_at,
                    artifact=payload,
                    sha256=record.sha256,
                    metrics={**record.metrics, _RECORD: extra},
                    trained_from=record.data_from,
                    trained_to=record.data_to,
                )
        except IntegrityError as exc:
            raise RegistryError(f"model {record.version!r} already exists") from exc

    def pointer(self) -> ActivePointer:
        with self.sessions.begin() as session:
            versions = table.list_versions(session, self.name)
        active = next((v for v in versions if v.status == "active"), None)
        fallback = next((v for v in versions if v.status == "fallback"), None)
        history = tuple(v.version for v in (fallback, active) if v is not None)
        stamp = f"{active.version if active else ''}|{fallback.version if fallback else ''}|"
        stamp += active.activated_at.isoformat() if active and active.activated_at else ""
        return ActivePointer(
            active=active.version if active else None,
            fallback=fallback.version if fallback else None,
            history=history,
            serial=zlib.crc32(stamp.encode()),
            updated_at=active.activated_at if active else None,
        )

    def activate(self, version: str, at: datetime) -> ActivePointer:
        try:
            with self.sessions.begin() as session:
                table.activate(session, self.name, version, at)
        except table.ModelVersionNotFound as exc:
            raise UnknownModel(str(exc)) from None
        return self.pointer()

    def rollback(self, at: datetime) -> ActivePointer:
        try:
            with self.sessions.begin() as session:
                table.rollback(session, self.name)
        except table.ModelVersionNotFound as exc:
            raise RegistryError(str(exc)) from None
        return self.pointer()


__all__ = ["SqlModelStore"]
