"""Price history on PostgreSQL: ingestion rate, cleaning time, the 7-day query, and whether partitioning pays.

Creates its own database on the server (``DATABASE_URL``'s, else 127.0.0.1:5432), drops it at the end,
and prints figures and the EXPLAIN ANALYZE plans behind them. Data is generated from the real
DescribeSpotPriceHistory sample in ``../shared/data/spot-prices/`` (its zone IDs, instance types,
products, price levels and per-series change rates; irregular second-resolution timestamps):

- ingest: 1,000,000 rows "of the world" (every series of the sample, about a week of changes), through
  ``ingest_observations`` (PriceObservation objects, as the collector hands them over) and through
  ``ingest_columns`` (the database part alone), fresh and re-ingested; then pages of 1,000 rows;
- clean: 1,000,000 rows of an operator's fleet over 7 days: pools in sibling zones whose published
  price is held between changes, and pools only agents report on (every ~3 minutes, with outages of
  every gap class), cleaned by the pure algorithm and by the job (load, clean, write);
- query: the clean series of 60 pools over the last 7 days;
- partitioning: the same raw rows into a table partitioned by day, against the plain table.

    PYTHONPATH=operator:agent:. python bench/prices.py [--rows 1000000] [--no-partitioning]
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from latency import percentiles  # bench/latency.py, beside this script
from spot_operator.planning.model import Pool
from spot_operator.ports import PriceObservation
from spot_operator.prices.cleaning import RawColumns, SeriesColumns, clean_columns
from spot_operator.prices.model import Method, RawSource
from spot_operator.prices.zones import region_of
from spot_operator.storage.cleaning_job import clean
from spot_operator.storage.db import make_engine, make_session_factory
from spot_operator.storage.ingest import (
    ObservationColumns,
    _raw_records,
    _Rows,
    ingest_columns,
    ingest_observations,
)
from spot_operator.storage.migrate import upgrade_to_head
from spot_operator.storage.pgbinary import binary_copy, mogrify
from spot_operator.storage.series import SERIES_PACKED_SQL, recent_price_arrays, recent_prices

SAMPLE = (
    Path(__file__).resolve().parents[1].parent
    / "shared/data/spot-prices/2022-05-31-describe-spot-price-history.tsv.gz"
)
SAMPLE_HOURS = 6.0  # the sample spans 18:00-24:00
START = datetime(2022, 6, 1, tzinfo=UTC)
T = TypeVar("T")

COPY_BINARY = "(pool_id, product_id, source, at, price, received_at) FROM STDIN WITH (FORMAT binary)"


# ----------------------------------------------------------------------------------------- helpers


def say(text_: str = "") -> None:
    print(text_, flush=True)


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def rate(rows: int, seconds: float) -> str:
    return f"{rows:>9,} rows in {seconds:6.2f} s = {rows / seconds:>9,.0f} rows/s"


def explain(session: Session, sql: str, params: dict[str, Any] | None = None) -> str:
    rows = session.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + sql), params or {}).all()
    return "\n".join("    " + r[0] for r in rows)


@contextmanager
def scratch_database() -> Iterator[str]:
    env = os.environ.get("DATABASE_URL")
    server = make_url(env or "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
    if server.drivername == "postgresql":
        server = server.set(drivername="postgresql+psycopg2")
    name = f"spot_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def truncate(engine: Engine, *tables: str) -> None:
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


def vacuum(engine: Engine, *tables: str) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in tables:
            conn.execute(text(f"VACUUM ANALYZE {table}"))


# ------------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class RealSeries:
    zone: list[str]
    instance_type: list[str]
    product: list[str]
    price: npt.NDArray[np.float64]
    rows: npt.NDArray[np.int64]  # rows of the series in the 6-hour sample


def load_sample() -> RealSeries:
    if not SAMPLE.exists():
        raise SystemExit(f"the real price sample is missing: {SAMPLE}")
    series: dict[tuple[str, str, str], list[float]] = {}
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as fh:
        for line in fh:
            zone, itype, product, price, _ = line.rstrip("\n").split("\t")
            series.setdefault((zone, itype, product), []).append(float(price))
    keys = sorted(series)
    return RealSeries(
        [k[0] for k in keys],
        [k[1] for k in keys],
        [k[2] for k in keys],
        np.array([series[k][0] for k in keys]),
        np.array([len(series[k]) for k in keys]),
    )


@dataclass(frozen=True)
class Generated:
    columns: ObservationColumns
    series: npt.NDArray[np.int64]  # index into the chosen series, per row
    hours: float

    def observations(self) -> list[PriceObservation]:
        c = self.columns
        pools = [Pool(t, z) for t, z in c.pools]
        sources = [s.wire for s in RawSource]
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        ats = (epoch + timedelta(microseconds=us) for us in c.at_us.tolist())
        return [
            PriceObservation(pools[p], at, float(price), c.products[q], sources[s])
            for p, q, s, at, price in zip(
                c.pool.tolist(), c.product.tolist(), c.source.tolist(), ats, c.price.tolist(), strict=True
            )
        ]


def walk(
    rng: np.random.Generator, base: npt.NDArray[np.float64], series: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """A multiplicative random walk per series (rows sorted by series then time), 4 decimals."""
    step = rng.normal(0.0, 0.02, len(series))
    starts = np.r_[True, series[1:] != series[:-1]]
    step[starts] = 0.0
    cum = np.cumsum(step)
    cum -= np.maximum.accumulate(np.where(starts, cum, -np.inf))
    return np.maximum(np.round(base[series] * np.exp(cum), 4), 0.0001)


def columns_for(
    real: RealSeries,
    chosen: npt.NDArray[np.int64],
    series: npt.NDArray[np.int64],
    at_s: npt.NDArray[np.float64],
    price: npt.NDArray[np.float64],
    source: npt.NDArray[np.int16],
) -> ObservationColumns:
    pool_keys = sorted({(real.instance_type[i], real.zone[i]) for i in chosen})
    pool_index = {k: n for n, k in enumerate(pool_keys)}
    products = sorted({real.product[i] for i in chosen})
    product_index = {k: n for n, k in enumerate(products)}
    series_pool = np.array([pool_index[(real.instance_type[i], real.zone[i])] for i in chosen], np.int32)
    series_product = np.array([product_index[real.product[i]] for i in chosen], np.int16)
    return ObservationColumns(
        tuple(pool_keys),
        tuple(products),
        series_pool[series],
        series_product[series],
        source,
        np.round(at_s * 1e6).astype(np.int64),
        price,
    )


def world(real: RealSeries, n_rows: int, seed: int = 1) -> Generated:
    """Every series of the sample, each changing at its sampled rate, for as long as n_rows take."""
    rng = np.random.default_rng(seed)
    hours = n_rows / real.rows.sum() * SAMPLE_HOURS
    counts = rng.poisson(real.rows * hours / SAMPLE_HOURS)
    counts = np.maximum(counts, 1)
    # Trim or pad to exactly n_rows, proportionally to the counts.
    while counts.sum() != n_rows:
        diff = n_rows - counts.sum()
        idx = rng.choice(len(counts), abs(diff), p=counts / counts.sum())
        np.add.at(counts, idx, int(np.sign(diff)))
        counts = np.maximum(counts, 1)
    chosen = np.arange(len(counts))
    series = np.repeat(chosen, counts)
    start = START.timestamp()
    at = start + np.floor(rng.random(n_rows) * hours * 3600)
    order = np.lexsort((at, series))
    series, at = series[order], at[order]
    price = walk(rng, real.price, series)
    cols = columns_for(real, chosen, series, at, price, np.zeros(n_rows, np.int16))
    return Generated(cols, series, hours)


def fleet(
    real: RealSeries, n_rows: int, days: float = 7.0, seed: int = 2
) -> tuple[Generated, npt.NDArray[np.bool_]]:
    """An operator's fleet: instance types quoted in >= 3 zones of a region; per (type, region,
    product) group one series is reported by agents only (gaps of every class), the others by the
    aws-api feed (changes every ~2 h, held in between). Returns the rows and which series are agents'."""
    rng = np.random.default_rng(seed)
    groups: dict[tuple[str, str, str], list[int]] = {}
    for i, (zone, itype, product) in enumerate(zip(real.zone, real.instance_type, real.product, strict=True)):
        if product in ("Linux/UNIX", "Windows"):
            groups.setdefault((region_of(zone), itype, product), []).append(i)
    eligible = sorted((k, v) for k, v in groups.items() if len(v) >= 3)
    picked: list[int] = []
    agent: list[bool] = []
    for _, members in eligible:
        for n, i in enumerate(sorted(members, key=lambda j: real.zone[j])[:4]):
            picked.append(i)
            agent.append(n == 0)
        if len(picked) >= 1000:
            break
    chosen = np.array(picked, np.int64)
    is_agent = np.array(agent)
    span = days * 86400
    start = START.timestamp()
    rows_s: list[npt.NDArray[np.int64]] = []
    rows_t: list[npt.NDArray[np.float64]] = []
    rows_src: list[npt.NDArray[np.int16]] = []
    # aws-api: Poisson changes, mean 2 h, plus the price in force at the start.
    for n in np.flatnonzero(~is_agent):
        k = rng.poisson(span / 7200) + 1
        t = np.r_[start, start + np.floor(rng.random(k - 1) * span)]
        rows_s.append(np.full(k, n))
        rows_t.append(t)
        rows_src.append(np.zeros(k, np.int16))
    aws_rows = sum(len(s) for s in rows_s)
    agents = np.flatnonzero(is_agent)
    per_agent = (n_rows - aws_rows) / len(agents)
    interval = span / (per_agent / 1.2)  # a replica repeats ~20 % of the primary's reports
    for n in agents:
        t = start + np.arange(0, span, interval) + rng.random(int(np.ceil(span / interval))) * 60
        t = t[t < start + span]
        # Outages: one every ~6 h, of a short, medium, long or too long length.
        keep = np.ones(len(t), np.bool_)
        for begin in rng.random(int(days * 4)) * span + start:
            length = rng.choice([8 * 60, 20 * 60, 2 * 3600, 5 * 3600])
            keep &= ~((t >= begin) & (t < begin + length))
        t = np.floor(t[keep])
        replica = t[rng.random(len(t)) < 0.2]
        rows_s += [np.full(len(t), n), np.full(len(replica), n)]
        rows_t += [t, replica + 1]
        rows_src += [np.full(len(t), 1, np.int16), np.full(len(replica), 2, np.int16)]
    series = np.concatenate(rows_s)
    at = np.concatenate(rows_t)
    source = np.concatenate(rows_src)
    if len(series) > n_rows:  # drop the excess at random, keeping every series' shape
        keep = np.sort(rng.choice(len(series), n_rows, replace=False))
        series, at, source = series[keep], at[keep], source[keep]
    resort = np.lexsort((source, at, series))
    series, at, source = series[resort], at[resort], source[resort]
    price = walk(rng, real.price[chosen], series)
    noisy = source == RawSource.AGENT_REPLICA
    price[noisy] = np.round(price[noisy] * rng.choice([1.0, 1.02], noisy.sum(), p=[0.9, 0.1]), 4)
    cols = columns_for(real, chosen, series, at, price, source)
    return Generated(cols, series, days * 24), is_agent


# ----------------------------------------------------------------------------------------- ingest


def bench_ingest(engine: Engine, sessions: sessionmaker[Session], data: Generated) -> None:
    n = len(data.columns)
    received = START + timedelta(hours=data.hours + 1)
    say(
        f"\n== ingest: {n:,} rows shaped like the real feed ({len(data.columns.pools):,} pools, "
        f"{len(set(zip(data.columns.pool.tolist(), data.columns.product.tolist(), strict=True))):,} series, "
        f"{data.hours / 24:.1f} days, products {', '.join(data.columns.products)})"
    )
    observations, seconds = timed(data.observations)
    say(f"  (building {n:,} PriceObservation objects took {seconds:.1f} s, not counted)")

    def run(fn: Callable[[Session], Any]) -> tuple[Any, float]:
        def go() -> Any:
            with sessions.begin() as s:
                return fn(s)

        return timed(go)

    truncate(engine, "price_observations", "price_feed_coverage", "pools", "products")
    result, seconds = run(lambda s: ingest_observations(s, observations, received))
    say(f"  objects, one call, fresh        : {rate(n, seconds)}  (inserted {result.inserted:,})")
    result, seconds = run(lambda s: ingest_observations(s, observations, received))
    say(f"  objects, one call, re-ingested  : {rate(n, seconds)}  (inserted {result.inserted:,})")
    convert, seconds_convert = timed(lambda: ObservationColumns.from_observations(observations))
    say(f"    of which objects -> columns   : {seconds_convert:6.2f} s")

    truncate(engine, "price_observations", "price_feed_coverage", "pools", "products")
    fresh = []
    for _ in range(3):
        truncate(engine, "price_observations", "price_feed_coverage")
        result, seconds = run(lambda s: ingest_columns(s, convert, received))
        fresh.append(seconds)
    say(
        f"  columns, one call, fresh (best of 3): {rate(n, min(fresh))}"
        f"  (median {statistics.median(fresh):.2f} s)"
    )
    result, seconds = run(lambda s: ingest_columns(s, convert, received))
    say(f"  columns, one call, re-ingested  : {rate(n, seconds)}  (inserted {result.inserted:,})")

    truncate(engine, "price_observations", "price_feed_coverage")
    pages = [observations[i : i + 1000] for i in range(0, min(n, 100_000), 1000)]
    _, seconds = run(lambda s: [ingest_observations(s, p, received) for p in pages])
    say(f"  pages of 1,000 in one transaction: {rate(sum(map(len, pages)), seconds)}")
    truncate(engine, "price_observations", "price_feed_coverage")

    def page_per_transaction() -> None:
        for p in pages[:20]:
            with sessions.begin() as s:
                ingest_observations(s, p, received)

    _, seconds = timed(page_per_transaction)
    say(f"  pages of 1,000, a transaction each: {rate(20_000, seconds)}")

    # The plan of the conflict-checked path, for 100,000 re-ingested rows.
    with sessions.begin() as s:
        ingest_columns(s, convert, received)
    with sessions.begin() as s:
        s.execute(text("CREATE TEMP TABLE stage (LIKE price_observations) ON COMMIT DROP"))
        dbapi = s.connection().connection.dbapi_connection
        assert dbapi is not None
        rows = _Rows(convert.pool, convert.product, convert.source, convert.at_us, convert.price)
        ids = dict(s.execute(text("SELECT instance_type || '|' || zone, id FROM pools")).all())
        pmap = np.array([ids[f"{t}|{z}"] for t, z in convert.pools], np.int32)
        products = dict(s.execute(text("SELECT name, id FROM products")).all())
        qmap = np.array([products[p] for p in convert.products], np.int16)
        rows = _Rows(pmap[rows.pool], qmap[rows.product], rows.source, rows.at_us, rows.price).take(
            np.arange(100_000)
        )
        cur = dbapi.cursor()
        cur.copy_expert(
            f"COPY stage {COPY_BINARY}",
            binary_copy(_raw_records(rows, int(received.timestamp() * 1e6))),
        )
        cur.close()
        s.execute(text("ANALYZE stage"))
        say("  plan: INSERT ... SELECT FROM staging ON CONFLICT DO NOTHING (100,000 rows, all present):")
        say(explain(s, "INSERT INTO price_observations SELECT * FROM stage ON CONFLICT DO NOTHING"))
        s.rollback()


# ------------------------------------------------------------------------------------------ clean


def bench_clean(
    engine: Engine, sessions: sessionmaker[Session], data: Generated, is_agent: npt.NDArray[np.bool_]
) -> list[Pool]:
    c = data.columns
    n = len(c)
    say(
        f"\n== clean and gap-fill: {n:,} rows of a fleet "
        f"({len(is_agent):,} series over {data.hours / 24:.0f} days; "
        f"{int(is_agent.sum())} reported by agents only, with outages)"
    )
    sources = np.bincount(c.source, minlength=3)
    say(
        f"  rows by source: aws-api {sources[0]:,}, agent-primary {sources[1]:,}, "
        f"agent-replica {sources[2]:,}"
    )
    start = START.timestamp()
    until = start + data.hours * 3600
    raw = RawColumns(data.series, c.at_us / 1e6, c.price, c.source.astype(np.int8))
    group_keys: dict[tuple[str, str, int], int] = {}
    series_ids = np.unique(data.series)
    first_row = np.searchsorted(data.series, series_ids)
    groups = np.array(
        [
            group_keys.setdefault(
                (region_of(c.pools[c.pool[r]][1]), c.pools[c.pool[r]][0], int(c.product[r])), len(group_keys)
            )
            for r in first_row
        ],
        np.int64,
    )
    covered = np.where(is_agent[series_ids], np.nan, until)
    info = SeriesColumns(series_ids, groups, covered)
    runs = []
    for _ in range(3):
        out, seconds = timed(lambda: clean_columns(raw, info, start, until))
        runs.append(seconds)
    methods = np.bincount(out.method, minlength=len(Method))
    say(
        f"  pure clean_columns: {n:,} rows -> {len(out):,} points in {min(runs):.2f} s "
        f"(best of 3; median {statistics.median(runs):.2f} s)"
    )
    say("  points by method: " + ", ".join(f"{m.label} {methods[m]:,}" for m in Method))
    say(f"  filled share {out.filled_share():.2%}")

    truncate(engine, "price_observations", "price_feed_coverage", "clean_prices", "pools", "products")
    received = START + timedelta(seconds=until - start)
    with sessions.begin() as s:
        ingest_columns(s, c, received)
    # Agents' series are not covered by the aws feed: drop the coverage ingestion gave them.
    with sessions.begin() as s:
        s.execute(text("UPDATE price_feed_coverage SET covered_until = latest_at WHERE source <> 0"))
    vacuum(engine, "price_observations", "price_feed_coverage")
    since_dt, until_dt = START, received
    summary, seconds = timed(lambda: _in_tx(sessions, lambda s: clean(s, None, since_dt, until_dt)))
    say(
        f"  job clean() first run: load + clean + write {summary.points:,} points in {seconds:.2f} s "
        f"({summary.written:,} written)"
    )
    summary, seconds = timed(lambda: _in_tx(sessions, lambda s: clean(s, None, since_dt, until_dt)))
    say(
        f"  job clean() again    : {seconds:.2f} s ({summary.written:,} written, {summary.deleted:,} deleted)"
    )
    last_day = received - timedelta(hours=6)
    summary, seconds = timed(lambda: _in_tx(sessions, lambda s: clean(s, None, last_day, received)))
    say(f"  periodic run (last 6 h of every pool): {seconds:.2f} s for {summary.points:,} points")
    vacuum(engine, "clean_prices")
    linux = c.products.index("Linux/UNIX")
    return sorted(Pool(*c.pools[p]) for p in np.unique(c.pool[c.product == linux]).tolist())


def _in_tx(sessions: sessionmaker[Session], fn: Callable[[Session], T]) -> T:
    with sessions.begin() as s:
        return fn(s)


# ------------------------------------------------------------------------------------------ query


def bench_query(sessions: sessionmaker[Session], pools: list[Pool], now: datetime) -> None:
    chosen = pools[:: max(1, len(pools) // 60)][:60]
    since = now - timedelta(days=7)
    say(f"\n== query: the clean series of {len(chosen)} pools over the last 7 days (Linux/UNIX)")
    times_arrays = []
    times_points = []
    for _ in range(31):
        with sessions.begin() as s:
            arrays, seconds = timed(lambda s=s: recent_price_arrays(s, chosen, since))
        times_arrays.append(seconds)
    for _ in range(5):
        with sessions.begin() as s:
            _, seconds = timed(lambda s=s: recent_prices(s, chosen, since))
        times_points.append(seconds)
    n = sum(len(a.times) for a in arrays.values())
    q = percentiles(times_arrays)
    say(
        f"  recent_price_arrays: {n:,} points of {len(arrays)} pools, end to end over 31 runs: "
        f"p50 {q['p50'] * 1000:.1f} ms, p95 {q['p95'] * 1000:.1f} ms, min {min(times_arrays) * 1000:.1f} ms"
    )
    say(f"  recent_prices (PricePoint objects): median {statistics.median(times_points) * 1000:.1f} ms")
    with sessions.begin() as s:
        ids = [
            i
            for (i,) in s.execute(
                text(
                    "SELECT p.id FROM pools p JOIN unnest(CAST(:t AS text[]), CAST(:z AS text[])) AS k(t, z)"
                    " ON p.instance_type = k.t AND p.zone = k.z"
                ),
                {"t": [p.instance_type for p in chosen], "z": [p.zone for p in chosen]},
            )
        ]
        product = s.execute(text("SELECT id FROM products WHERE name = 'Linux/UNIX'")).scalar_one()
        s.execute(text("SET LOCAL jit = off"))
        params = {
            "pools": sorted(ids),
            "product": product,
            "since": since,
            "until": datetime(9999, 1, 1, tzinfo=UTC),
        }
        say("  plan of recent_price_arrays' query (streamed out as a binary COPY):")
        say(explain(s, mogrify(s, SERIES_PACKED_SQL, params)))
        sql_raw = (
            "SELECT pool_id, product_id, source, at, price FROM price_observations"
            " WHERE pool_id IN ({}) AND at >= '{}' ORDER BY pool_id, product_id, source, at"
        ).format(",".join(map(str, ids)), since.isoformat())
        say("  the same pools' raw rows, every product and source:")
        say(explain(s, sql_raw))


# ----------------------------------------------------------------------------------- partitioning


def bench_partitioning(engine: Engine, sessions: sessionmaker[Session], data: Generated) -> None:
    c = data.columns
    n = len(c)
    say(f"\n== partitioning: the same {n:,} raw rows, plain table vs partitioned by day")
    days = int(np.ceil(data.hours / 24)) + 1
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS raw_plain, raw_part CASCADE"))
        for name, extra in (("raw_plain", ""), ("raw_part", " PARTITION BY RANGE (at)")):
            conn.execute(
                text(
                    f"CREATE TABLE {name} (pool_id int4 NOT NULL, product_id int2 NOT NULL, "
                    "source int2 NOT NULL,"
                    " at timestamptz NOT NULL, price float8 NOT NULL, received_at timestamptz NOT NULL,"
                    f" PRIMARY KEY (pool_id, product_id, source, at)){extra}"
                )
            )
            conn.execute(text(f"CREATE INDEX ON {name} USING brin (at)"))
        for d in range(-1, days):
            lo = START + timedelta(days=d)
            hi = lo + timedelta(days=1)
            conn.execute(
                text(
                    f"CREATE TABLE raw_part_{d + 1} PARTITION OF raw_part "
                    f"FOR VALUES FROM ('{lo}') TO ('{hi}')"
                )
            )
    # The generated feed repeats a few keys (the ingest path drops them); COPY into a primary key would not.
    pool, product, source, at_us = c.pool.astype(np.int64), c.product, c.source, c.at_us
    order = np.lexsort((at_us, source, product, pool))
    keys = np.stack([pool[order], product[order], source[order], at_us[order]])
    first = np.ones(len(order), dtype=bool)
    first[1:] = np.any(keys[:, 1:] != keys[:, :-1], axis=0)
    keep = np.sort(order[first])
    rows = _Rows(
        c.pool[keep].astype(np.int32) + 1, c.product[keep] + 1, c.source[keep], c.at_us[keep], c.price[keep]
    )
    n = len(keep)
    received_us = int((START + timedelta(hours=data.hours + 1)).timestamp() * 1e6)
    stream = _raw_records(rows, received_us)
    for table in ("raw_plain", "raw_part"):
        copies = []
        for _ in range(3):
            with engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {table}"))
            with sessions.begin() as s:
                dbapi = s.connection().connection.dbapi_connection
                assert dbapi is not None
                cur = dbapi.cursor()
                _, seconds = timed(
                    lambda cur=cur, table=table: cur.copy_expert(
                        f"COPY {table} {COPY_BINARY}",
                        binary_copy(stream),
                    )
                )
                cur.close()
            copies.append(seconds)
        with sessions.begin() as s:
            s.execute(text(f"CREATE TEMP TABLE stage (LIKE {table}) ON COMMIT DROP"))
            dbapi = s.connection().connection.dbapi_connection
            assert dbapi is not None
            cur = dbapi.cursor()
            cur.copy_expert(
                f"COPY stage {COPY_BINARY}",
                binary_copy(stream),
            )
            cur.close()
            _, conflict = timed(
                lambda s=s, table=table: s.execute(
                    text(f"INSERT INTO {table} SELECT * FROM stage ON CONFLICT DO NOTHING")
                )
            )
        say(
            f"  {table:9}: binary COPY fresh (best of 3) {rate(n, min(copies))};"
            f" INSERT ... ON CONFLICT of {n:,} present rows {conflict:.2f} s"
        )
    vacuum(engine, "raw_plain", "raw_part")
    cutoff = START + timedelta(days=1)
    with sessions.begin() as s:
        doomed = s.execute(text("SELECT count(*) FROM raw_plain WHERE at < :c"), {"c": cutoff}).scalar_one()

    def batched_delete() -> int:
        total = 0
        while True:
            with sessions.begin() as s:
                deleted = s.execute(
                    text(
                        "DELETE FROM raw_plain WHERE ctid = ANY(ARRAY("
                        "SELECT ctid FROM raw_plain WHERE at < :c LIMIT 10000))"
                    ),
                    {"c": cutoff},
                ).rowcount  # type: ignore[attr-defined]
            total += deleted
            if deleted < 10000:
                return total

    deleted, seconds = timed(batched_delete)
    say(
        f"  retention of the first day ({doomed:,} rows): plain, batches of 10,000: "
        f"{seconds:.2f} s ({deleted:,} rows)"
    )

    def drop_partitions() -> None:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE raw_part_0, raw_part_1"))

    _, seconds = timed(drop_partitions)
    say(f"  retention of the first day: partitioned, DROP of its partitions: {seconds * 1000:.1f} ms")
    with sessions.begin() as s:
        ids = [i for (i,) in s.execute(text("SELECT DISTINCT pool_id FROM raw_plain ORDER BY 1 LIMIT 60"))]
        since = START + timedelta(hours=data.hours) - timedelta(days=7)
        for table in ("raw_plain", "raw_part"):
            sql = (
                f"SELECT pool_id, product_id, source, at, price FROM {table}"
                " WHERE pool_id IN ({}) AND at >= '{}' ORDER BY pool_id, product_id, source, at"
            ).format(",".join(map(str, ids)), since.isoformat())
            plan = explain(s, sql)
            last = [line for line in plan.splitlines() if "Execution Time" in line]
            say(f"  60 pools, last 7 days from {table}: {last[0].strip() if last else '?'}")
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE raw_plain, raw_part CASCADE"))


# ------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--no-partitioning", action="store_true")
    args = parser.parse_args()

    load = os.getloadavg()
    say(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    real = load_sample()
    say(
        f"real sample: {real.rows.sum():,} rows, {len(real.price):,} series (zone ID, instance type, product)"
    )
    with scratch_database() as url:
        upgrade_to_head(url)
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        with engine.connect() as conn:
            settings = {
                name: conn.execute(text(f"SHOW {name}")).scalar_one()
                for name in (
                    "server_version",
                    "shared_buffers",
                    "max_wal_size",
                    "synchronous_commit",
                    "wal_level",
                )
            }
        say("postgresql: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
        try:
            world_data = world(real, args.rows)
            bench_ingest(engine, sessions, world_data)
            fleet_data, is_agent = fleet(real, args.rows)
            pools = bench_clean(engine, sessions, fleet_data, is_agent)
            bench_query(sessions, pools, START + timedelta(hours=fleet_data.hours))
            if not args.no_partitioning:
                bench_partitioning(engine, sessions, world_data)
        finally:
            engine.dispose()


if __name__ == "__main__":
    main()
