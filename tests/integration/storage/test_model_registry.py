"""The model registry table: save, list, activate, roll back; one active and one fallback per name."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from spot_operator.storage import model_registry as registry
from spot_operator.storage.models import ModelVersionRow

pytestmark = pytest.mark.postgres

T0 = datetime(2022, 6, 1, tzinfo=UTC)


def save(s: Session, version: str, minutes: int = 0) -> registry.ModelVersion:
    return registry.save_version(
        s, "risk", version, T0 + timedelta(minutes=minutes), artifact=version.encode(), metrics={"auc": 0.8}
    )


def statuses(s: Session) -> dict[str, str]:
    return {v.version: v.status for v in registry.list_versions(s, "risk")}


def test_a_saved_version_is_inactive_and_listed_with_its_digest(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        saved = save(s, "v1")
        listed = registry.list_versions(s, "risk")
        assert registry.artifact(s, "risk", "v1") == b"v1"
    assert saved.status == "inactive"
    assert [v.version for v in listed] == ["v1"]
    assert listed[0].sha256 == hashlib.sha256(b"v1").hexdigest()
    assert listed[0].has_artifact
    assert listed[0].metrics == {"auc": 0.8}


def test_activating_makes_the_previous_active_the_fallback(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        for n in (1, 2, 3):
            save(s, f"v{n}", n)
        registry.activate(s, "risk", "v1", T0)
        registry.activate(s, "risk", "v2", T0 + timedelta(hours=1))
        assert statuses(s) == {"v1": "fallback", "v2": "active", "v3": "inactive"}
        registry.activate(s, "risk", "v3", T0 + timedelta(hours=2))
        assert statuses(s) == {"v1": "inactive", "v2": "fallback", "v3": "active"}
        assert registry.active(s, "risk").version == "v3"  # type: ignore[union-attr]
        assert registry.fallback(s, "risk").version == "v2"  # type: ignore[union-attr]


def test_activating_the_fallback_swaps_the_two(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        save(s, "v1")
        save(s, "v2", 1)
        registry.activate(s, "risk", "v1", T0)
        registry.activate(s, "risk", "v2", T0 + timedelta(hours=1))
        registry.activate(s, "risk", "v1", T0 + timedelta(hours=2))
        assert statuses(s) == {"v1": "active", "v2": "fallback"}


def test_rollback_walks_back_the_activation_history(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        for n in (1, 2, 3):
            save(s, f"v{n}", n)
            registry.activate(s, "risk", f"v{n}", T0 + timedelta(hours=n))
        assert registry.rollback(s, "risk").version == "v2"
        assert statuses(s) == {"v1": "fallback", "v2": "active", "v3": "inactive"}
        assert registry.rollback(s, "risk").version == "v1"
        # v3 was rolled back: it never returns as a fallback.
        assert statuses(s) == {"v1": "active", "v2": "inactive", "v3": "inactive"}
        with pytest.raises(registry.ModelVersionNotFound, match="no fallback"):
            registry.rollback(s, "risk")


def test_names_are_independent(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        save(s, "v1")
        registry.save_version(s, "price", "v1", T0, artifact_path="/models/p1.ubj", sha256="0" * 64)
        registry.activate(s, "risk", "v1", T0)
        registry.activate(s, "price", "v1", T0)
        assert registry.active(s, "price").artifact_path == "/models/p1.ubj"  # type: ignore[union-attr]
        assert registry.artifact(s, "price", "v1") is None


def test_the_database_refuses_a_second_active_version(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        save(s, "v1")
        save(s, "v2", 1)
        registry.activate(s, "risk", "v1", T0)
    with pytest.raises(IntegrityError), sessions.begin() as s:
        s.execute(update(ModelVersionRow).where(ModelVersionRow.version == "v2").values(status="active"))


def test_a_version_exists_once_and_needs_an_artifact(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        save(s, "v1")
    with pytest.raises(IntegrityError), sessions.begin() as s:
        save(s, "v1")
    with pytest.raises(ValueError, match="artifact"), sessions.begin() as s:
        registry.save_version(s, "risk", "v9", T0)
    with pytest.raises(registry.ModelVersionNotFound), sessions.begin() as s:
        registry.activate(s, "risk", "nope", T0)
