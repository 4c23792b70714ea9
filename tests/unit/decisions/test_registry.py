"""Model registry (filesystem store) and the scorer chain's fall-backs: load, error, slow, invalid."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from spot_operator import metrics
from spot_operator.decisions.features import FEATURES, AvailabilityHistory, PoolHistory, to_epoch
from spot_operator.decisions.history import StaticHistory
from spot_operator.decisions.registry import (
    ActivePointer,
    FilesystemModelStore,
    ModelRecord,
    ModelRegistry,
    RegistryError,
    UnknownModel,
)
from spot_operator.decisions.rules import RuleScorer
from spot_operator.decisions.scorer import ScorerChain, xgboost_loader
from spot_operator.decisions.xgb import ModelLoadError
from spot_operator.planning.model import Pool
from spot_operator.ports import PoolScore, Scorer, ScoringContext

NOW = datetime(2026, 2, 1, tzinfo=UTC)
POOLS = [Pool("m5.large", "us-east-1a"), Pool("m5.large", "us-east-1b")]


@pytest.fixture(scope="module")
def model_bytes() -> list[bytes]:
    """Two tiny, different boosters over the real feature set."""
    rng = np.random.default_rng(0)
    x = rng.random((200, len(FEATURES)))
    out = []
    for seed in (1, 2):
        y = (x[:, 2] + rng.normal(0, 0.3, 200) > 0.5).astype(float)
        booster = xgb.train(
            {"objective": "binary:logistic", "nthread": 1, "seed": seed, "max_depth": 2},
            xgb.DMatrix(x, label=y, feature_names=list(FEATURES)),
            3,
        )
        out.append(bytes(booster.save_raw()))
    return out


@pytest.fixture
def history() -> StaticHistory:
    start = to_epoch(NOW - timedelta(days=1))
    return StaticHistory(
        [
            PoolHistory(POOLS[0], AvailabilityHistory.from_samples(start, 600, [1, 1, 0] * 48)),
            PoolHistory(POOLS[1], AvailabilityHistory.from_samples(start, 600, [1] * 144)),
        ]
    )


Events = list[tuple[str, str]]


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _registry(tmp_path: Path) -> ModelRegistry:
    ticks = iter(range(1, 1000))
    return ModelRegistry(
        FilesystemModelStore(tmp_path / "models"), now=lambda: NOW + timedelta(minutes=next(ticks))
    )


def _fallbacks(version: str, reason: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "spot_optimizer_model_fallback_total", {"model": version, "reason": reason}
    )
    return value or 0.0


# ------------------------------------------------------------------------------------------- registry


def test_upload_keeps_version_metrics_and_data_range(tmp_path: Path, model_bytes: list[bytes]) -> None:
    reg = _registry(tmp_path)
    rec = reg.upload(
        model_bytes[0],
        metrics={"valid_xgboost_auc": 0.8},
        data_from=NOW - timedelta(days=9),
        data_to=NOW - timedelta(days=2),
        params={"rounds": 3},
        notes="tiny",
    )
    again = FilesystemModelStore(tmp_path / "models").records()
    assert again == [rec]
    assert rec.metrics == {"valid_xgboost_auc": 0.8} and rec.data_to == NOW - timedelta(days=2)
    assert rec.size == len(model_bytes[0]) and len(rec.sha256) == 64
    assert ModelRecord.from_json(rec.to_json()) == rec
    assert reg.load(rec.version) == (rec, model_bytes[0])
    with pytest.raises(RegistryError, match="already exists"):
        reg.upload(model_bytes[0], version=rec.version)
    with pytest.raises(ModelLoadError):
        reg.upload(b"not a model at all")


def test_activate_and_rollback_walk_the_history(tmp_path: Path, model_bytes: list[bytes]) -> None:
    reg = _registry(tmp_path)
    v1 = reg.upload(model_bytes[0], version="v1").version
    v2 = reg.upload(model_bytes[1], version="v2").version
    assert reg.pointer() == ActivePointer()
    assert reg.store.pointer().serial == 0
    p = reg.activate(v1)
    assert (p.active, p.fallback, p.serial) == ("v1", None, 1)
    p = reg.activate(v2)
    assert (p.active, p.fallback, p.serial) == ("v2", "v1", 2)
    assert [(i.record.version, i.status) for i in reg.list()] == [("v1", "fallback"), ("v2", "active")]
    p = reg.activate(v1)  # re-activating moves it to the end of the history
    assert (p.active, p.fallback, p.history) == ("v1", "v2", ("v2", "v1"))
    p = reg.rollback()
    assert (p.active, p.fallback) == ("v2", None)
    p = reg.rollback()
    assert (p.active, p.fallback, p.serial) == (None, None, 5)
    with pytest.raises(RegistryError, match="no active model"):
        reg.rollback()
    with pytest.raises(UnknownModel):
        reg.activate("v9")


def test_the_sql_store_on_the_model_versions_table(model_bytes: list[bytes], history: StaticHistory) -> None:
    """The same registry over SQLite (the sandbox's database); PostgreSQL runs the same table code."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import StaticPool

    from spot_operator.decisions.sql_store import SqlModelStore
    from spot_operator.storage.db import make_session_factory
    from spot_operator.storage.models import Base

    engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    Base.metadata.create_all(engine)
    store = SqlModelStore(make_session_factory(engine))
    ticks = iter(range(1, 100))
    reg = ModelRegistry(store, now=lambda: NOW + timedelta(minutes=next(ticks)))
    v1 = reg.upload(
        model_bytes[0],
        version="s1",
        metrics={"valid_xgboost_auc": 0.7},
        horizon_hours=2.0,
        data_from=NOW - timedelta(days=3),
        data_to=NOW - timedelta(days=1),
        notes="sql",
    )
    reg.upload(model_bytes[1], version="s2")
    assert store.records()[0] == v1
    assert reg.load("s1") == (v1, model_bytes[0])
    with pytest.raises(RegistryError, match="already exists"):
        reg.upload(model_bytes[0], version="s1")
    empty = reg.pointer()
    assert empty.active is None
    first = reg.activate("s1")
    second = reg.activate("s2")
    assert (second.active, second.fallback) == ("s2", "s1")
    assert len({empty.serial, first.serial, second.serial}) == 3
    assert [(i.record.version, i.status) for i in reg.list()] == [("s1", "fallback"), ("s2", "active")]
    clock, events = Clock(), Events()
    chain = _chain(reg, history, clock, events)
    chain.score(POOLS, NOW)
    assert chain.version == "s2"
    back = reg.rollback()
    assert (back.active, back.fallback) == ("s1", None)
    clock.t += 31
    chain.score(POOLS, NOW)
    assert chain.version == "s1" and not events
    with pytest.raises(RegistryError, match="no fallback"):
        reg.rollback()
    with pytest.raises(UnknownModel):
        reg.activate("s9")


# ------------------------------------------------------------------------------------------- the chain


def _chain(
    reg: ModelRegistry, history: StaticHistory, clock: Clock, events: list[tuple[str, str]], **kwargs: object
) -> ScorerChain:
    return ScorerChain(
        RuleScorer(history),
        reg,
        kwargs.pop("loader", None) or xgboost_loader(history),  # type: ignore[arg-type]
        poll_seconds=30,
        demote_seconds=300,
        clock=clock,
        on_fallback=lambda r, m: events.append((r, m)),
        **kwargs,  # type: ignore[arg-type]
    )


def test_activation_is_picked_up_without_a_restart(
    tmp_path: Path, model_bytes: list[bytes], history: StaticHistory
) -> None:
    reg = _registry(tmp_path)
    v1 = reg.upload(model_bytes[0], version="pick-v1").version
    clock, events = Clock(), Events()
    chain = _chain(reg, history, clock, events)
    out = chain.score(POOLS, NOW)
    assert set(out) == set(POOLS) and chain.name == "rules"
    reg.activate(v1)
    chain.score(POOLS, NOW)
    assert chain.name == "rules", "the pointer is polled every poll_seconds, not on every call"
    clock.t += 31
    chain.score(POOLS, NOW)
    assert (chain.name, chain.version) == ("xgboost", v1)
    assert (
        metrics.REGISTRY.get_sample_value(
            "spot_optimizer_model_active_info", {"name": "xgboost", "version": v1}
        )
        == 1.0
    )
    reg.rollback()
    clock.t += 31
    chain.score(POOLS, NOW)
    assert chain.name == "rules" and not events


def test_a_corrupt_model_file_falls_back_to_the_previous_model_then_the_rules(
    tmp_path: Path, model_bytes: list[bytes], history: StaticHistory
) -> None:
    reg = _registry(tmp_path)
    store = reg.store
    assert isinstance(store, FilesystemModelStore)
    v1 = reg.upload(model_bytes[0], version="c-v1").version
    v2 = reg.upload(model_bytes[1], version="c-v2").version
    reg.activate(v1)
    reg.activate(v2)
    store.model_path(v2).write_bytes(b"\x00" * 64)  # bit rot on disk
    before = _fallbacks(v2, "load")
    clock, events = Clock(), Events()
    chain = _chain(reg, history, clock, events)
    chain.score(POOLS, NOW)
    assert chain.version == v1
    assert _fallbacks(v2, "load") == before + 1
    assert [r for r, _ in events] == ["ModelLoadFallback"]
    assert v2 in events[0][1] and "corrupt" in events[0][1] and "falling back" in events[0][1]

    store.model_path(v1).write_bytes(b"\x01" * 64)
    events.clear()
    fresh = _chain(reg, history, Clock(), events)
    fresh.score(POOLS, NOW)
    assert fresh.name == "rules"
    assert [r for r, _ in events] == ["ModelLoadFallback", "ModelLoadFallback"]


def test_bytes_that_pass_the_digest_but_do_not_load_fall_back_too(
    tmp_path: Path, model_bytes: list[bytes], history: StaticHistory
) -> None:
    reg = _registry(tmp_path)
    reg.activate(reg.upload(b"garbage that was never a model", version="bad", validate=False).version)
    clock, events = Clock(), Events()
    chain = _chain(reg, history, clock, events)
    chain.score(POOLS, NOW)
    assert chain.name == "rules"
    assert events and "not an xgboost model" in events[0][1]
    assert chain.status[0]["loaded"] is False


class Behaving:
    """A model stand-in: slow (advances the fake timer), raising, or answering nonsense."""

    name = "fake"

    def __init__(self, version: str, timer: Clock, mode: str) -> None:
        self.version = version
        self.timer = timer
        self.mode = mode
        self.calls = 0

    def score(
        self, pools: Sequence[Pool], now: datetime, context: ScoringContext | None = None
    ) -> dict[Pool, PoolScore]:
        self.calls += 1
        if self.mode == "slow":
            self.timer.t += 0.2
        if self.mode == "raise":
            raise RuntimeError("feature pipeline broke")
        risk = 1.5 if self.mode == "invalid" else 0.1
        return {p: PoolScore(p, risk, None) for p in pools}


@pytest.mark.parametrize(("mode", "reason"), [("slow", "slow"), ("raise", "error"), ("invalid", "invalid")])
def test_a_misbehaving_model_falls_back_and_is_skipped_for_a_while(
    tmp_path: Path, model_bytes: list[bytes], history: StaticHistory, mode: str, reason: str
) -> None:
    reg = _registry(tmp_path)
    good = reg.upload(model_bytes[0], version=f"{mode}-good").version
    bad = reg.upload(model_bytes[1], version=f"{mode}-bad").version
    reg.activate(good)
    reg.activate(bad)
    clock, timer, events = Clock(), Clock(), Events()
    made: dict[str, Behaving] = {}

    def loader(record: ModelRecord, payload: bytes) -> Scorer:
        made[record.version] = Behaving(record.version, timer, mode if record.version == bad else "ok")
        return made[record.version]

    chain = _chain(reg, history, clock, events, loader=loader, latency_budget_seconds=0.05, timer=timer)
    before = _fallbacks(bad, reason)
    out = chain.score(POOLS, NOW)
    assert chain.version == good and all(s.risk == 0.1 for s in out.values())
    assert _fallbacks(bad, reason) == before + 1
    assert [r for r, _ in events] == [f"Model{reason.capitalize()}Fallback"]
    chain.score(POOLS, NOW)
    assert made[bad].calls == 1, "a demoted model is not called again before demote_seconds"
    assert len(events) == 1
    clock.t += 301
    chain.score(POOLS, NOW)
    assert made[bad].calls == 2 and len(events) == 2


def test_a_broken_event_sink_does_not_break_scoring(
    tmp_path: Path, model_bytes: list[bytes], history: StaticHistory
) -> None:
    reg = _registry(tmp_path)
    reg.activate(reg.upload(b"junk", version="junk", validate=False).version)

    def sink(reason: str, message: str) -> None:
        raise RuntimeError("API down")

    chain = ScorerChain(RuleScorer(history), reg, xgboost_loader(history), clock=Clock(), on_fallback=sink)
    assert set(chain.score(POOLS, NOW)) == set(POOLS)
    with pytest.raises(ValueError, match="loader"):
        ScorerChain(RuleScorer(history), reg)
