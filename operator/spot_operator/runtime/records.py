"""History for the price store: each completed switch and each accepted notice, written in the background.

The operator's hooks (``Operator.on_switch_done``, ``Operator.on_notice``) are synchronous and must never
wait for the database: a record becomes a task, and the store's own buffer holds it while PostgreSQL is
away. ``Recorder.drain`` waits for the tasks still running (at shutdown).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from spot_operator.api import Capacity
from spot_operator.errors import StoreUnavailable
from spot_operator.planning import Notice, Pool
from spot_operator.ports import InterruptionRecord, PriceStore, SwitchRecord
from spot_operator.state import AgentState

log = logging.getLogger(__name__)


def pool_of(text: str | None) -> Pool | None:
    """A status pool ('m5.large.us-east-1a' or 'm5.large.us-east-1a/on-demand') as a Pool. Pure."""
    if not text:
        return None
    name, _, lifecycle = text.partition("/")
    return Pool.parse(name, Capacity.ON_DEMAND if lifecycle == "on-demand" else Capacity.SPOT)


def switch_record(state: AgentState, name: str) -> SwitchRecord | None:
    """The history row of a completed switch; None while it is not Completed. Pure."""
    sw = state.switches[name]
    st = sw.status
    to_pool = pool_of(st.new_pool)
    if st.phase is None or st.phase.value != "Completed" or to_pool is None:
        return None
    timings = st.timings
    return SwitchRecord(
        agent=state.key,
        switch=name,
        reason=sw.spec.reason.value,
        to_pool=to_pool,
        started_at=st.started_at or sw.created_at,
        from_pool=pool_of(st.old_pool),
        completed_at=st.completed_at,
        launch_seconds=timings.launch_seconds if timings else None,
        cutover_seconds=timings.cutover_seconds if timings else None,
        downtime_seconds=timings.downtime_seconds if timings else None,
        pre_state={"instance": st.old_instance_id},
        post_state={"instance": st.new_instance_id},
    )


def interruption_record(state: AgentState, notice: Notice) -> InterruptionRecord:
    """The history row of a notice, with the pool of the instance it names. Pure."""
    inst = state.instances.get(notice.instance_id)
    return InterruptionRecord(
        notice.instance_id, notice.kind.value, notice.received_at, inst.pool if inst else None, notice.source
    )


class Recorder:
    """Writes records to the store from synchronous hooks, keeping a reference to every write."""

    def __init__(self, store: PriceStore) -> None:
        self.store = store
        self._tasks: set[asyncio.Task[None]] = set()

    def switch_done(self, state: AgentState, name: str) -> None:
        record = switch_record(state, name)
        if record is not None:
            self._spawn(self.store.record_switch(record), f"record switch {name}")

    def notice(self, state: AgentState, notice: Notice) -> None:
        record = interruption_record(state, notice)
        self._spawn(self.store.record_interruption(record), f"record notice {notice.instance_id}")

    def _spawn(self, write: Awaitable[None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(self._guarded(write, name), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guarded(write: Awaitable[None], name: str) -> None:
        # History, not control: a full buffer or a closed store loses the row, never the operator.
        try:
            await write
        except StoreUnavailable:
            log.warning("%s: the store refused it", name)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
