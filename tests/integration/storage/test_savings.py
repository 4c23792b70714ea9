"""Savings from recorded switches, the stored clean series and on-demand prices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from spot_operator.api import Capacity
from spot_operator.planning.model import Pool
from spot_operator.ports import PriceObservation, SwitchRecord
from spot_operator.storage.cleaning_job import clean
from spot_operator.storage.history import record_switch, switches
from spot_operator.storage.ingest import ingest_observations
from spot_operator.storage.savings import savings_for
from spot_operator.storage.series import record_on_demand_prices

pytestmark = pytest.mark.postgres

T0 = datetime(2022, 6, 1, tzinfo=UTC)
H = timedelta(hours=1)
A = Pool("m5.large", "us-east-1a")
B = Pool("m5.large", "us-east-1b")


def test_savings_follow_the_primary_through_its_switches(sessions: sessionmaker[Session]) -> None:
    now = T0 + 4 * H
    with sessions.begin() as s:
        # Pool A costs 0.03 then 0.05 from 01:00; pool B 0.02; on-demand 0.10.
        page = [
            PriceObservation(A, T0, 0.03),
            PriceObservation(A, T0 + H, 0.05),
            PriceObservation(B, T0, 0.02),
        ]
        ingest_observations(s, page, now)
        record_on_demand_prices(s, "us-east-1", {"m5.large": 0.10}, T0)
        clean(s, [A, B], T0, now)
        # On spot in A from 00:00, moved to B at 02:00, to on-demand (in A's zone) at 03:00.
        record_switch(s, SwitchRecord("team/build", "initial", "initial", A, T0, completed_at=T0))
        record_switch(s, SwitchRecord("team/build", "sw-1", "decision", B, T0 + 2 * H, A, T0 + 2 * H))
        od = A.as_on_demand()
        record_switch(s, SwitchRecord("team/build", "sw-2", "emergency", od, T0 + 3 * H, B, T0 + 3 * H))
        out = savings_for(s, "team/build", now, hours=5, days=2)

    assert out.to_date_usd == pytest.approx(0.07 + 0.05 + 0.08 + 0.0)
    assert [round(p.saved_usd, 6) for p in out.hourly[-5:]] == [0.07, 0.05, 0.08, 0.0, 0.0]
    assert out.daily[-1].saved_usd == pytest.approx(0.20)
    assert out.daily[-1].priced_hours == pytest.approx(4.0)
    assert (out.hourly_usd, out.unpriced_hours) == (0.0, 0.0)  # on on-demand now


def test_recording_a_switch_again_updates_it(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        record_switch(s, SwitchRecord("team/db", "sw-1", "manual", B, T0, A, pre_state={"pool": str(A)}))
        record_switch(
            s,
            SwitchRecord(
                "team/db",
                "sw-1",
                "manual",
                B,
                T0,
                A,
                completed_at=T0 + timedelta(seconds=90),
                launch_seconds=60.0,
                cutover_seconds=3.5,
                downtime_seconds=1.25,
                pre_state={"pool": str(A)},
                post_state={"pool": str(B), "at": T0},
            ),
        )
        (stored,) = switches(s, "team/db")
    assert stored.completed_at == T0 + timedelta(seconds=90)
    assert (stored.launch_seconds, stored.cutover_seconds, stored.downtime_seconds) == (60.0, 3.5, 1.25)
    assert stored.post_state == {"pool": str(B), "at": T0.isoformat()}
    assert stored.from_pool == A and stored.to_pool.lifecycle is Capacity.SPOT


def test_an_agent_without_history_has_no_savings(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        out = savings_for(s, "team/none", T0)
    assert out.to_date_usd == 0.0
    assert all(p.priced_hours == 0 for p in out.hourly)
