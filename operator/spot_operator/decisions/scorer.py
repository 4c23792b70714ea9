"""ScorerChain: the :class:`spot_operator.ports.Scorer` the operator calls.

It answers with the registry's active model; when that model will not load, raises, returns nonsense
or takes longer than its latency budget, the fallback model answers, and when that fails too the rules
do. Every fall-back is counted in ``metrics.MODEL_FALLBACKS`` (by model and reason) and reported once
through ``on_fallback(reason, message)``, which the operator turns into a Kubernetes Event. A model
that failed at scoring is skipped for ``demote_seconds`` and then tried again; one that failed to load
is retried when the pointer changes or after ``demote_seconds``.

The chain polls the registry's pointer every ``poll_seconds`` from inside ``score``: activating or
rolling back a model takes effect at the next call after that, without a restart. Reading the pointer
and loading a model are file (or SQL) reads; an asyncio operator calls ``score`` in a worker thread.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from spot_operator import metrics
from spot_operator.decisions.history import HistorySource
from spot_operator.decisions.registry import ModelRecord, ModelRegistry, RegistryError
from spot_operator.decisions.xgb import MODEL_KIND, ModelLoadError, XGBoostScorer
from spot_operator.planning.model import Pool
from spot_operator.ports import PoolScore, Scorer, ScoringContext

log = logging.getLogger(__name__)

FallbackCallback = Callable[[str, str], None]  # (reason, message)
Loader = Callable[[ModelRecord, bytes], Scorer]


def xgboost_loader(history: HistorySource, nthread: int = 1) -> Loader:
    def load(record: ModelRecord, payload: bytes) -> Scorer:
        if record.kind != MODEL_KIND:
            raise ModelLoadError(f"model kind {record.kind!r} is not supported (only {MODEL_KIND!r})")
        return XGBoostScorer.from_bytes(payload, record.version, history, record.horizon_hours, nthread)

    return load


@dataclass
class _Slot:
    role: str  # "active" | "fallback"
    version: str
    scorer: Scorer | None = None
    load_error: str | None = None
    retry_at: float = 0.0  # monotonic seconds: skip until then


class ScorerChain:
    """Active model -> fallback model -> rules, with a latency budget per call."""

    def __init__(
        self,
        rules: Scorer,
        registry: ModelRegistry | None = None,
        loader: Loader | None = None,
        *,
        latency_budget_seconds: float = 0.05,
        poll_seconds: float = 30.0,
        demote_seconds: float = 300.0,
        on_fallback: FallbackCallback | None = None,
        clock: Callable[[], float] = time.monotonic,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        if registry is not None and loader is None:
            raise ValueError("a registry needs a loader (e.g. xgboost_loader(history))")
        self.rules = rules
        self.registry = registry
        self.loader = loader
        self.latency_budget = latency_budget_seconds
        self.poll_seconds = poll_seconds
        self.demote_seconds = demote_seconds
        self.on_fallback = on_fallback
        self._clock = clock
        self._timer = timer
        self._serial: int | None = None
        self._next_poll = -math.inf
        self._slots: list[_Slot] = []
        self._answered: tuple[str, str] | None = None
        self.name = rules.name
        self.version = rules.version

    # -- the registry --------------------------------------------------------------------------
    def refresh(self, force: bool = False) -> None:
        """Re-read the pointer when due (or forced) and load what it names if it changed."""
        now = self._clock()
        if self.registry is None or (not force and now < self._next_poll):
            return
        self._next_poll = now + self.poll_seconds
        try:
            pointer = self.registry.pointer()
        except (OSError, RegistryError) as exc:
            log.warning("model registry unreadable, keeping the models loaded: %s", exc)
            return
        if pointer.serial == self._serial:
            for slot in self._slots:
                if slot.scorer is None and now >= slot.retry_at:
                    self._load(slot, now)
            return
        self._serial = pointer.serial
        wanted = [("active", pointer.active), ("fallback", pointer.fallback)]
        loaded = {s.version: s for s in self._slots if s.scorer is not None}
        self._slots = []
        for role, version in wanted:
            if version is None:
                continue
            slot = loaded.get(version) or _Slot(role, version)
            slot.role = role
            if slot.scorer is None:
                self._load(slot, now)
            self._slots.append(slot)

    def _load(self, slot: _Slot, now: float) -> None:
        assert self.registry is not None
        assert self.loader is not None
        try:
            record, payload = self.registry.load(slot.version)
            slot.scorer = self.loader(record, payload)
            slot.load_error = None
            slot.retry_at = 0.0
        except Exception as exc:  # a model must never take the decision loop down
            slot.scorer = None
            slot.load_error = f"{type(exc).__name__}: {exc}"
            slot.retry_at = now + self.demote_seconds
            self._fallback(
                slot, "load", f"{slot.role} model {slot.version} failed to load ({slot.load_error})"
            )

    # -- scoring -------------------------------------------------------------------------------
    def _fallback(self, slot: _Slot, reason: str, message: str) -> None:
        metrics.MODEL_FALLBACKS.labels(slot.version, reason).inc()
        log.warning("%s; falling back", message)
        if self.on_fallback is not None:
            try:
                self.on_fallback(f"Model{reason.capitalize()}Fallback", f"{message}; falling back")
            except Exception:  # an event sink must not break scoring either
                log.exception("fallback event callback failed")

    def _demote(self, slot: _Slot, reason: str, message: str) -> None:
        slot.retry_at = self._clock() + self.demote_seconds
        self._fallback(slot, reason, message)

    @staticmethod
    def _invalid(pools: Sequence[Pool], out: object) -> str | None:
        if not isinstance(out, dict):
            return f"returned {type(out).__name__}, not a mapping"
        missing = [p for p in pools if p not in out]
        if missing:
            return f"no score for {len(missing)} pool(s), e.g. {missing[0]}"
        for pool in pools:
            score = out[pool]
            if not isinstance(score, PoolScore) or not (0.0 <= score.risk <= 1.0):
                return f"risk for {pool} is not a probability: {getattr(score, 'risk', score)!r}"
        return None

    def _record_answer(self, name: str, version: str) -> None:
        if self._answered != (name, version):
            self._answered = (name, version)
            metrics.MODEL_INFO.info({"name": name, "version": version})
        self.name, self.version = name, version

    def score(
        self, pools: Sequence[Pool], now: datetime, context: ScoringContext | None = None
    ) -> dict[Pool, PoolScore]:
        self.refresh()
        clock = self._clock()
        for slot in self._slots:
            if slot.scorer is None or clock < slot.retry_at:
                continue
            started = self._timer()
            try:
                out = slot.scorer.score(pools, now, context)
            except Exception as exc:
                self._demote(
                    slot, "error", f"{slot.role} model {slot.version} raised {type(exc).__name__}: {exc}"
                )
                continue
            elapsed = self._timer() - started
            if elapsed > self.latency_budget:
                self._demote(
                    slot,
                    "slow",
                    f"{slot.role} model {slot.version} took {elapsed * 1000:.1f} ms "
                    f"(budget {self.latency_budget * 1000:.1f} ms)",
                )
                continue
            problem = self._invalid(pools, out)
            if problem is not None:
                self._demote(slot, "invalid", f"{slot.role} model {slot.version} {problem}")
                continue
            self._record_answer(slot.scorer.name, slot.version)
            return out
        out = self.rules.score(pools, now, context)
        self._record_answer(self.rules.name, self.rules.version)
        return out

    @property
    def status(self) -> list[dict[str, object]]:
        """What is loaded, for ``spotctl`` and the operator's status endpoint."""
        clock = self._clock()
        return [
            {
                "role": s.role,
                "version": s.version,
                "loaded": s.scorer is not None,
                "error": s.load_error,
                "demoted_for_seconds": max(s.retry_at - clock, 0.0) if s.scorer is not None else None,
            }
            for s in self._slots
        ]


__all__ = ["FallbackCallback", "Loader", "ScorerChain", "xgboost_loader"]
