"""Background work started with the operator, each cycle a plain async function the tests call directly.

- observe: one DescribeInstances and one DescribeAddresses per region for all agents; agents whose
  instances or traffic changed are reconciled;
- prices: one incremental DescribeSpotPriceHistory per region into the PriceBook (and the store);
- decisions: the scorer fills the risk per pool, then every auto-switch agent is asked ``decide``;
- notices: the SQS queue, long-polled; each message deleted only once its notice is recorded;
- housekeeping: price cleaning and retention in the store.

Every loop runs only while ``active`` is set (this replica holds the leader lease), survives errors
(logged, counted, retried next cycle) and stops when cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from spot_operator import metrics
from spot_operator.api import Mode
from spot_operator.api.switchrequest import SwitchReason
from spot_operator.errors import CloudError, StoreUnavailable
from spot_operator.planning.decisions import Decision, decide
from spot_operator.planning.model import Notice
from spot_operator.planning.naming import decision_name
from spot_operator.ports import (
    DecisionRecord,
    NoticeQueue,
    PriceStore,
    QueueMessage,
    Scorer,
    SpotPriceSource,
)
from spot_operator.runtime.observer import ObserveStats, observe_once
from spot_operator.runtime.operator import Operator
from spot_operator.runtime.prices import PriceStats, collect_prices_once

log = logging.getLogger(__name__)


async def observe_cycle(op: Operator) -> ObserveStats:
    before = {key: (op.fingerprint(key), state.observed_at is None) for key, state in op.agents.items()}
    stats = await observe_once(op.ec2, op.traffic, op.agents, op.now())
    for key, state in list(op.agents.items()):
        fingerprint, waiting = before.get(key, (None, True))
        if fingerprint != op.fingerprint(key) or (waiting and state.observed_at is not None):
            op.kick(key)
    return stats


@dataclass
class PriceCycle:
    source: SpotPriceSource
    store: PriceStore | None = None
    since: dict[str, datetime] = field(default_factory=dict)
    fetched_types: dict[str, set[str]] = field(default_factory=dict)

    async def __call__(self, op: Operator) -> PriceStats:
        sink = self.store.record_observations if self.store is not None else None
        before = dict(op.book.spot)
        stats = await collect_prices_once(
            self.source, op.agents, op.book, self.since, sink=sink, fetched_types=self.fetched_types
        )
        changed = {pool for pool, obs in op.book.spot.items() if before.get(pool) is not obs}
        for pool in changed:
            metrics.POOL_PRICE.labels(pool.name).set(op.book.spot[pool].price)
        if changed:  # statuses show the primary's price: refresh the agents whose pools moved
            for key, state in list(op.agents.items()):
                if any(p.instance_type in state.spec.instance_types for p in changed):
                    op.kick(key)
        return stats


@dataclass
class DecisionCycle:
    scorer: Scorer
    store: PriceStore | None = None
    last: dict[str, Decision] = field(default_factory=dict)

    async def __call__(self, op: Operator) -> list[Decision]:
        now = op.now()
        for pools in op.spot_pools().values():
            try:
                scores = self.scorer.score(sorted(pools), now)
            except Exception:  # the chain falls back internally; this is the last line
                log.exception("scoring failed; risks keep their last values")
                continue
            op.risks.update({pool: score.risk for pool, score in scores.items()})
        made = []
        for key, state in list(op.agents.items()):
            if state.spec.mode is not Mode.AUTO_SWITCH or state.deleting:
                continue
            decision = decide(state.view(), op.market_for(state), now)
            self.last[key] = decision
            await self._record(state.key, decision)
            target = decision.switch_target()
            if target is None:
                continue
            name = decision_name(state.ref.name, now)
            sw = await op.objects.create_switch(
                state.ref, name, target, SwitchReason.DECISION, None, decision.message
            )
            state.switches.setdefault(sw.name, sw)
            op.kick(key)
            made.append(decision)
        return made

    async def _record(self, agent: str, decision: Decision) -> None:
        if self.store is None:
            return
        record = DecisionRecord(
            agent=agent,
            at=decision.at,
            model_name=self.scorer.name,
            model_version=self.scorer.version,
            inputs={"current": decision.current.name if decision.current else None},
            scores={"considered": [c.to_record() for c in decision.considered]},
            choice=str(decision.target) if decision.switch and decision.target else None,
            reason=decision.reason,
        )
        # The buffer full or the store off: a decision record is history, not control.
        with contextlib.suppress(StoreUnavailable):
            await self.store.record_decision(record)


@dataclass
class NoticeCycle:
    queue: NoticeQueue
    store: PriceStore | None = None
    wait_seconds: int = 20

    write_wait_seconds: float = 5.0

    async def __call__(self, op: Operator) -> int:
        messages = await self.queue.receive(self.wait_seconds)
        handled = 0
        acting: list[tuple[QueueMessage, Notice]] = []
        done: list[QueueMessage] = []
        for message in messages:
            if message.notice is None:
                log.warning(
                    "SQS message %s ignored: %s", message.detail_type or "?", message.error or "not ours"
                )
                done.append(message)
                continue
            outcome = op.submit_notice(message.notice)
            handled += outcome == "accepted"
            if outcome == "unknown":
                done.append(message)
            else:
                acting.append((message, message.notice))
        # Delete a message only once a crash cannot lose its notice: until then SQS keeps it and
        # delivers it again after the visibility timeout (a duplicate, if it was written after all).
        written = await asyncio.gather(
            *(op.notice_written(n, None, self.write_wait_seconds) for _, n in acting)
        )
        for (message, notice), ok in zip(acting, written, strict=True):
            if ok:
                done.append(message)
            else:
                log.warning(
                    "%s notice for %s not written to status yet: its SQS message is kept",
                    notice.kind.value,
                    notice.instance_id,
                )
        if done:
            await self.queue.delete(done)
        return handled


Cycle = Callable[[Operator], Awaitable[Any]]


async def run_every(
    name: str,
    op: Operator,
    cycle: Cycle,
    interval: float,
    active: asyncio.Event,
    initial_delay: float = 0.0,
    wake: asyncio.Event | None = None,
) -> None:
    """Run ``cycle`` every ``interval`` seconds while ``active``; errors are logged and retried. Setting
    ``wake`` runs it at once (after a failure, the backoff still holds)."""
    if initial_delay:
        await asyncio.sleep(initial_delay)
    failures = 0
    while True:
        await active.wait()
        if wake is not None:
            wake.clear()  # a wake-up asked for while the cycle runs makes one more run
        started = time.monotonic()
        try:
            await cycle(op)
            failures = 0
        except asyncio.CancelledError:
            raise
        except (CloudError, StoreUnavailable) as exc:
            failures += 1
            log.warning("%s cycle failed (%d in a row): %s", name, failures, exc)
        except Exception:
            failures += 1
            log.exception("%s cycle failed (%d in a row)", name, failures)
        pause = interval if failures == 0 else min(interval * 2 ** min(failures, 5), 600.0)
        remaining = max(pause - (time.monotonic() - started), 0.0)
        if wake is None or failures:
            await asyncio.sleep(remaining)
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), remaining)
