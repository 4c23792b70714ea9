"""The model registry: trained models with their version, metrics and training data range.

Storage sits behind the small :class:`ModelStore` Protocol. :class:`FilesystemModelStore` keeps a
directory (used by the sandbox, the simulator and the tests)::

    <root>/index.json          every model's record
    <root>/active.json         the pointer: active version, fallback version, activation history, serial
    <root>/models/<version>.ubj

Every write goes to a temporary file first and is renamed into place, under an exclusive lock, so a
reader never sees half a file. The pointer's ``serial`` grows on every change: an operator polls it
and reloads when it moves, so ``spotctl model activate`` takes effect without a restart.

The active model's fallback is the model that was active before it; ``rollback`` makes that one active
again. When neither works the scorer chain answers with the rules (see :mod:`decisions.scorer`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from spot_operator.decisions.features import FEATURES
from spot_operator.decisions.xgb import MODEL_KIND, load_booster


class RegistryError(RuntimeError):
    pass


class UnknownModel(RegistryError, KeyError):
    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown model"


def _iso(when: datetime | None) -> str | None:
    return when.astimezone(UTC).isoformat() if when is not None else None


def _parse(when: object) -> datetime | None:
    return datetime.fromisoformat(str(when)) if when else None


@dataclass(frozen=True)
class ModelRecord:
    version: str
    kind: str
    created_at: datetime
    sha256: str
    size: int
    horizon_hours: float = 1.0
    features: tuple[str, ...] = FEATURES
    metrics: Mapping[str, float] = field(default_factory=dict)
    data_from: datetime | None = None
    data_to: datetime | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    notes: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "kind": self.kind,
            "created_at": _iso(self.created_at),
            "sha256": self.sha256,
            "size": self.size,
            "horizon_hours": self.horizon_hours,
            "features": list(self.features),
            "metrics": dict(self.metrics),
            "data_from": _iso(self.data_from),
            "data_to": _iso(self.data_to),
            "params": dict(self.params),
            "notes": self.notes,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ModelRecord:
        created = _parse(doc["created_at"])
        assert created is not None
        return cls(
            version=str(doc["version"]),
            kind=str(doc.get("kind", MODEL_KIND)),
            created_at=created,
            sha256=str(doc["sha256"]),
            size=int(doc["size"]),
            horizon_hours=float(doc.get("horizon_hours", 1.0)),
            features=tuple(doc.get("features", FEATURES)),
            metrics={str(k): float(v) for k, v in dict(doc.get("metrics", {})).items()},
            data_from=_parse(doc.get("data_from")),
            data_to=_parse(doc.get("data_to")),
            params=dict(doc.get("params", {})),
            notes=str(doc.get("notes", "")),
        )


@dataclass(frozen=True)
class ActivePointer:
    active: str | None = None
    fallback: str | None = None
    history: tuple[str, ...] = ()  # activations, oldest first; the last is the active model
    serial: int = 0
    updated_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "active": self.active,
            "fallback": self.fallback,
            "history": list(self.history),
            "serial": self.serial,
            "updated_at": _iso(self.updated_at),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ActivePointer:
        return cls(
            active=doc.get("active"),
            fallback=doc.get("fallback"),
            history=tuple(doc.get("history", ())),
            serial=int(doc.get("serial", 0)),
            updated_at=_parse(doc.get("updated_at")),
        )


class ModelStore(Protocol):
    """Where models and the active pointer live (a directory here; the ``model_versions`` table in SQL)."""

    def records(self) -> list[ModelRecord]: ...

    def payload(self, version: str) -> bytes:
        """The model's bytes; raises :class:`UnknownModel` when the version is not stored."""
        ...

    def put(self, record: ModelRecord, payload: bytes) -> None: ...

    def pointer(self) -> ActivePointer:
        """Active and fallback versions; ``serial`` changes whenever they do (what operators poll)."""
        ...

    def activate(self, version: str, at: datetime) -> ActivePointer:
        """Make ``version`` active, the active one its fallback; raises :class:`UnknownModel`."""
        ...

    def rollback(self, at: datetime) -> ActivePointer:
        """Make the fallback active again; raises :class:`RegistryError` when there is nothing to undo."""
        ...


class FilesystemModelStore:
    """Implements :class:`ModelStore` in a directory with a JSON index."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    @property
    def _index(self) -> Path:
        return self.root / "index.json"

    @property
    def _pointer(self) -> Path:
        return self.root / "active.json"

    def model_path(self, version: str) -> Path:
        if not version or "/" in version or version.startswith("."):
            raise UnknownModel(f"invalid model version {version!r}")
        return self.root / "models" / f"{version}.ubj"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _read_json(self, path: Path) -> dict[str, Any]:
        try:
            with path.open(encoding="utf-8") as fh:
                doc = json.load(fh)
        except FileNotFoundError:
            return {}
        except json.JSONDecodeError as exc:
            raise RegistryError(f"{path} is not valid JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise RegistryError(f"{path} does not hold a JSON object")
        return doc

    def records(self) -> list[ModelRecord]:
        return [ModelRecord.from_json(d) for d in self._read_json(self._index).get("models", [])]

    def payload(self, version: str) -> bytes:
        if version not in {r.version for r in self.records()}:
            raise UnknownModel(f"no model {version!r} in {self.root}")
        try:
            return self.model_path(version).read_bytes()
        except FileNotFoundError as exc:
            raise RegistryError(
                f"model {version!r} is listed but its file is missing: {exc.filename}"
            ) from exc

    def put(self, record: ModelRecord, payload: bytes) -> None:
        with self._locked():
            models = [
                d
                for d in self._read_json(self._index).get("models", [])
                if d.get("version") != record.version
            ]
            self._write(self.model_path(record.version), payload)
            models.append(record.to_json())
            self._write(self._index, json.dumps({"models": models}, indent=2).encode())

    def pointer(self) -> ActivePointer:
        return ActivePointer.from_json(self._read_json(self._pointer))

    def _change(self, change: Callable[[tuple[str, ...]], tuple[str, ...]], at: datetime) -> ActivePointer:
        with self._locked():
            current = self.pointer()
            history = change(current.history)
            updated = ActivePointer(
                active=history[-1] if history else None,
                fallback=history[-2] if len(history) > 1 else None,
                history=history,
                serial=current.serial + 1,
                updated_at=at,
            )
            self._write(self._pointer, json.dumps(updated.to_json(), indent=2).encode())
            return updated

    def activate(self, version: str, at: datetime) -> ActivePointer:
        if version not in {r.version for r in self.records()}:
            raise UnknownModel(f"no model {version!r} in {self.root}")
        return self._change(lambda h: (*(v for v in h if v != version), version), at)

    def rollback(self, at: datetime) -> ActivePointer:
        """Here the last model can be rolled back too: then no model is active and the rules answer."""
        if not self.pointer().history:
            raise RegistryError("no active model to roll back")
        return self._change(lambda h: h[:-1], at)


def sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


@dataclass(frozen=True)
class Listed:
    record: ModelRecord
    active: bool = False
    fallback: bool = False

    @property
    def status(self) -> str:
        return "active" if self.active else "fallback" if self.fallback else ""


class ModelRegistry:
    """Upload, activate, roll back and list models in a :class:`ModelStore`."""

    def __init__(self, store: ModelStore, now: Callable[[], datetime] | None = None) -> None:
        self.store = store
        self._now = now or (lambda: datetime.now(UTC))

    def upload(
        self,
        payload: bytes,
        *,
        kind: str = MODEL_KIND,
        metrics: Mapping[str, float] | None = None,
        data_from: datetime | None = None,
        data_to: datetime | None = None,
        horizon_hours: float = 1.0,
        params: Mapping[str, Any] | None = None,
        notes: str = "",
        version: str | None = None,
        validate: bool = True,
    ) -> ModelRecord:
        """Store a model; with ``validate`` (the default) refuse bytes that do not load as a model."""
        if validate and kind == MODEL_KIND:
            load_booster(payload)  # raises ModelLoadError with the reason
        digest = sha256(payload)
        created = self._now()
        version = version or f"{created:%Y%m%d-%H%M%S}-{digest[:8]}"
        if any(r.version == version for r in self.store.records()):
            raise RegistryError(f"model {version!r} already exists")
        record = ModelRecord(
            version=version,
            kind=kind,
            created_at=created,
            sha256=digest,
            size=len(payload),
            horizon_hours=horizon_hours,
            metrics=dict(metrics or {}),
            data_from=data_from,
            data_to=data_to,
            params=dict(params or {}),
            notes=notes,
        )
        self.store.put(record, payload)
        return record

    def record(self, version: str) -> ModelRecord:
        for r in self.store.records():
            if r.version == version:
                return r
        raise UnknownModel(f"no model {version!r}")

    def pointer(self) -> ActivePointer:
        return self.store.pointer()

    def activate(self, version: str) -> ActivePointer:
        """Make ``version`` active; the previously active model becomes its fallback."""
        return self.store.activate(version, self._now())

    def rollback(self) -> ActivePointer:
        """Deactivate the active model: its fallback becomes active."""
        return self.store.rollback(self._now())

    def list(self) -> list[Listed]:
        pointer = self.store.pointer()
        records = sorted(self.store.records(), key=lambda r: (r.created_at, r.version))
        return [Listed(r, r.version == pointer.active, r.version == pointer.fallback) for r in records]

    def load(self, version: str) -> tuple[ModelRecord, bytes]:
        """The record and bytes of a version, checked against the stored digest."""
        record = self.record(version)
        payload = self.store.payload(version)
        if sha256(payload) != record.sha256:
            raise RegistryError(f"model {version!r} is corrupt: its file does not match the recorded sha256")
        return record, payload


def open_registry(where: str | Path) -> ModelRegistry:
    """A registry in a directory, or in the ``model_versions`` table for a ``postgresql://`` or
    ``sqlite://`` URL (the operator's database)."""
    text = str(where)
    if text.startswith(("postgresql", "sqlite:")):
        from spot_operator.decisions.sql_store import SqlModelStore
        from spot_operator.storage.db import make_engine, make_session_factory

        return ModelRegistry(SqlModelStore(make_session_factory(make_engine(text))))
    return ModelRegistry(FilesystemModelStore(Path(text)))


__all__ = [
    "ActivePointer",
    "FilesystemModelStore",
    "Listed",
    "ModelRecord",
    "ModelRegistry",
    "ModelStore",
    "RegistryError",
    "UnknownModel",
    "open_registry",
    "sha256",
]
