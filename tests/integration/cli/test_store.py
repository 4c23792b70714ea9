"""`spotctl prices` and `spotctl savings` on rows written by the storage package into real PostgreSQL."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
import yaml
from sqlalchemy.orm import Session, sessionmaker

from spot_operator.planning.model import Pool
from spot_operator.ports import PriceObservation, SwitchRecord
from spot_operator.storage.cleaning_job import clean
from spot_operator.storage.history import record_switch
from spot_operator.storage.ingest import ingest_observations
from spot_operator.storage.series import recent_prices, record_on_demand_prices

from .conftest import Invoke

pytestmark = pytest.mark.postgres

NOW = datetime.now(UTC)
T0 = NOW.replace(minute=0, second=0, microsecond=0) - timedelta(hours=5)
H = timedelta(hours=1)
REPORTED = Pool("m5.large", "us-east-1a")  # agent reports with holes: the cleaning fills some buckets
SIBLING = Pool("m5.large", "us-east-1b")
C = Pool("m5.large", "us-east-1c")  # aws-api prices, held: what the savings are priced with
D = Pool("m5.large", "us-east-1d")


def _minutes(*minutes: int) -> list[datetime]:
    return [T0 + timedelta(minutes=m, seconds=30) for m in minutes]


@pytest.fixture
def history(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    reports = [
        PriceObservation(REPORTED, at, 0.1, source="agent-primary") for at in _minutes(0, 5, 15, 45, 165)
    ]
    aws = [
        PriceObservation(SIBLING, T0, 0.2),
        PriceObservation(SIBLING, T0 + H, 0.3),
        PriceObservation(C, T0, 0.03),
        PriceObservation(D, T0, 0.02),
        PriceObservation(D, T0 + 2 * H, 0.025),
    ]
    with sessions.begin() as s:
        ingest_observations(s, reports + aws, NOW)
        record_on_demand_prices(s, "us-east-1", {"m5.large": 0.10}, T0)
        clean(s, [REPORTED, SIBLING, C, D], T0, NOW)
        # team/build: on C from T0, on-demand from T0+2h. team/db: on D from T0, on-demand from T0+3h.
        record_switch(s, SwitchRecord("team/build", "initial", "initial", C, T0, completed_at=T0))
        od_c, od_d = C.as_on_demand(), D.as_on_demand()
        record_switch(s, SwitchRecord("team/build", "sw-1", "manual", od_c, T0 + 2 * H, C, T0 + 2 * H))
        record_switch(s, SwitchRecord("team/db", "initial", "initial", D, T0, completed_at=T0))
        record_switch(s, SwitchRecord("team/db", "sw-1", "emergency", od_d, T0 + 3 * H, D, T0 + 3 * H))
    return sessions


def _png(path: Path) -> np.ndarray:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000
    image = np.asarray(mpimg.imread(path))
    assert image.shape[0] > 300 and image.shape[1] > 600
    assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 20  # drawn on, not a blank canvas
    return image


def test_prices_table_json_and_plot(
    spotctl: Invoke, database_url: str, history: sessionmaker[Session], tmp_path: Path
) -> None:
    with history() as s:
        stored = recent_prices(s, [REPORTED], T0)[REPORTED]
    filled = [p for p in stored if p.method in ("linear", "weighted", "cross-pool")]
    assert filled  # the data set has filled points to show
    pools = [REPORTED.name, SIBLING.name, "c5.xlarge.us-east-1a"]
    plot = tmp_path / "out" / "prices.png"

    table = spotctl(["prices", *pools, "--since", "1d", "--plot", str(plot), "--database-url", database_url])
    as_json = spotctl(["prices", *pools, "--since", "1d", "-o", "json", "--database-url", database_url])

    assert table.exit_code == 0, table.output
    row = next(line for line in table.stdout.splitlines() if REPORTED.name in line)
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells[0] == REPORTED.name and cells[1] == "0.10000"
    assert cells[-2:] == [str(len(stored)), f"{100 * len(filled) / len(stored):.1f}"]
    sibling = next(line for line in table.stdout.splitlines() if SIBLING.name in line)
    assert "0.30000" in sibling and "+50.0" in sibling  # 0.2 then 0.3
    assert "no clean prices since" in table.stderr and "c5.xlarge.us-east-1a" in table.stderr
    assert f"wrote {plot}" in table.stdout
    _png(plot)

    assert as_json.exit_code == 0
    doc = {row["pool"]: row for row in json.loads(as_json.stdout)}
    assert doc[REPORTED.name]["points"] == len(stored)
    assert doc[REPORTED.name]["filled_percent"] == pytest.approx(100 * len(filled) / len(stored))
    assert doc[SIBLING.name]["latest"] == 0.3 and doc[SIBLING.name]["minimum"] == 0.2
    assert doc[SIBLING.name]["filled_percent"] == 0.0
    assert doc["c5.xlarge.us-east-1a"]["points"] == 0


def test_prices_since_limits_the_window(
    spotctl: Invoke, database_url: str, history: sessionmaker[Session]
) -> None:
    since = (T0 + 2 * H).isoformat()
    result = spotctl(["prices", D.name, "--since", since, "-o", "json", "--database-url", database_url])
    (row,) = json.loads(result.stdout)
    assert row["minimum"] == 0.025  # the 0.02 of the first two hours is before the window
    bad = spotctl(["prices", D.name, "--since", "yesterday", "--database-url", database_url])
    assert bad.exit_code == 2


def test_savings_per_agent_and_total_with_a_plot(
    spotctl: Invoke, database_url: str, history: sessionmaker[Session], tmp_path: Path
) -> None:
    plot = tmp_path / "savings.png"

    table = spotctl(["savings", "--plot", str(plot), "--database-url", database_url])
    as_json = spotctl(["savings", "-o", "json", "--database-url", database_url])
    one = spotctl(["savings", "--agent", "team/db", "-o", "yaml", "--database-url", database_url])

    assert table.exit_code == as_json.exit_code == one.exit_code == 0, table.output
    doc = json.loads(as_json.stdout)
    by_agent = {row["agent"]: row for row in doc["agents"]}
    assert sorted(by_agent) == ["team/build", "team/db"]
    # 2 h on C at 0.03 against 0.10, then on-demand; on D 2 h at 0.02 and 1 h at 0.025, then on-demand.
    assert by_agent["team/build"]["to_date_usd"] == pytest.approx(0.14)
    assert by_agent["team/db"]["to_date_usd"] == pytest.approx(0.235)
    assert by_agent["team/build"]["hourly_usd"] == 0.0  # on on-demand now
    assert doc["total"]["to_date_usd"] == pytest.approx(0.375)
    assert doc["total"]["last_day_usd"] == pytest.approx(0.375)
    lines = table.stdout.splitlines()
    assert "0.14" in next(line for line in lines if "team/build" in line)
    assert re.search(r"│ +0\.2[34] │", next(line for line in lines if "team/db" in line))  # 0.235
    assert "0.38" in next(line for line in lines if "total" in line)
    assert f"wrote {plot}" in table.stdout
    _png(plot)
    only = yaml.safe_load(one.stdout)
    assert [row["agent"] for row in only["agents"]] == ["team/db"]
    assert only["total"]["to_date_usd"] == pytest.approx(0.235)


def test_savings_of_an_agent_without_history_and_a_bad_agent(
    spotctl: Invoke, database_url: str, sessions: sessionmaker[Session]
) -> None:
    empty = spotctl(["savings", "--database-url", database_url])
    nobody = spotctl(["savings", "--agent", "team/none", "-o", "json", "--database-url", database_url])
    bad = spotctl(["savings", "--agent", "no-namespace", "--database-url", database_url])

    assert empty.exit_code == 0 and "no savings recorded yet" in empty.stdout
    assert json.loads(nobody.stdout)["agents"][0]["to_date_usd"] == 0.0
    assert bad.exit_code == 2
