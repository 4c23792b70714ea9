"""`spotctl prices POOL...`: the clean price history of pools from the store, as a table and a PNG."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import fmean
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from spot_operator.cli.app import app
from spot_operator.cli.cluster import err_console
from spot_operator.cli.database import DatabaseOption, read
from spot_operator.cli.output import Output, OutputOption, dump, progress_bar
from spot_operator.cli.plots import is_filled, plot_prices
from spot_operator.planning.model import Pool
from spot_operator.ports import PricePoint
from spot_operator.storage.pools import DEFAULT_PRODUCT
from spot_operator.storage.series import recent_prices

console = Console(width=max(Console().width, 140), markup=False)

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")


def parse_since(value: str, now: datetime) -> datetime:
    """'7d', '12h', '30m', '2w', '90s' before ``now``, or an ISO 8601 instant (UTC when naive)."""
    found = _DURATION.match(value.strip())
    if found:
        return now - timedelta(seconds=float(found.group(1)) * UNITS[found.group(2)])
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{value!r}: expected a duration (30m, 12h, 7d, 2w) or an ISO 8601 time", param_hint="--since"
        ) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def parse_pool(name: str) -> Pool:
    try:
        return Pool.parse(name)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="POOL") from None


@dataclass(frozen=True)
class PoolStats:
    pool: str
    points: int
    latest: float | None = None
    latest_at: str | None = None
    minimum: float | None = None
    mean: float | None = None
    maximum: float | None = None
    change_percent: float | None = None
    filled_percent: float | None = None


def stats(pool: Pool, points: tuple[PricePoint, ...]) -> PoolStats:
    if not points:
        return PoolStats(pool.name, 0)
    prices = [p.price for p in points]
    first, last = points[0], points[-1]
    return PoolStats(
        pool=pool.name,
        points=len(points),
        latest=last.price,
        latest_at=last.at.astimezone(UTC).isoformat(),
        minimum=min(prices),
        mean=fmean(prices),
        maximum=max(prices),
        change_percent=(last.price - first.price) / first.price * 100 if first.price else None,
        filled_percent=100.0 * sum(is_filled(p.method) for p in points) / len(points),
    )


def _fetch(
    url: str | None, pools: list[Pool], since: datetime, product: str
) -> dict[Pool, tuple[PricePoint, ...]]:
    """One query per pool, with a progress bar on stderr: a week of many pools takes a while."""

    def query(session: Session) -> dict[Pool, tuple[PricePoint, ...]]:
        out: dict[Pool, tuple[PricePoint, ...]] = {}
        with progress_bar() as progress:
            task = progress.add_task("reading prices", total=len(pools))
            for pool in pools:
                progress.update(task, description=f"reading {pool.name}")
                out[pool] = recent_prices(session, [pool], since, product).get(pool, ())
                progress.advance(task)
        return out

    return read(url, query)


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def render(rows: list[PoolStats], since: datetime) -> Table:
    table = Table(title=f"spot prices since {since:%Y-%m-%d %H:%M} UTC", title_justify="left")
    table.add_column("pool", no_wrap=True)
    table.add_column("latest $/h", justify="right")
    table.add_column("at (UTC)", no_wrap=True)
    for name in ("min", "mean", "max", "change %", "points", "filled %"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in rows:
        at = (
            "-" if row.latest_at is None else datetime.fromisoformat(row.latest_at).strftime("%Y-%m-%d %H:%M")
        )
        table.add_row(
            row.pool,
            _cell(row.latest, ".5f"),
            at,
            _cell(row.minimum, ".5f"),
            _cell(row.mean, ".5f"),
            _cell(row.maximum, ".5f"),
            _cell(row.change_percent, "+.1f"),
            str(row.points),
            _cell(row.filled_percent, ".1f"),
        )
    return table


@app.command("prices")
def prices_command(
    pools: Annotated[
        list[str], typer.Argument(help="Pools as '<instance type>.<zone>', e.g. m5.large.us-east-1a.")
    ],
    since: Annotated[
        str, typer.Option(help="How far back: a duration (30m, 12h, 7d, 2w) or an ISO 8601 time.")
    ] = "7d",
    plot: Annotated[Path | None, typer.Option(help="Also write a PNG of the series here.")] = None,
    database_url: DatabaseOption = None,
    product: Annotated[str, typer.Option(help="The product description prices are for.")] = DEFAULT_PRODUCT,
    output: OutputOption = Output.TABLE,
) -> None:
    """The latest price and statistics of each pool from the clean series, and optionally a plot."""
    wanted = list(dict.fromkeys(parse_pool(p) for p in pools))
    start = parse_since(since, datetime.now(UTC))
    series = _fetch(database_url, wanted, start, product)
    rows = [stats(pool, series.get(pool, ())) for pool in wanted]
    if output is not Output.TABLE:
        dump([asdict(r) for r in rows], output)
    else:
        console.print(render(rows, start))
    missing = [r.pool for r in rows if not r.points]
    if missing:
        err_console.print(f"no clean prices since {start:%Y-%m-%d %H:%M} UTC for: {', '.join(missing)}")
    if plot is not None:
        if len(missing) == len(rows):
            err_console.print(f"nothing to plot: {plot} not written")
            raise typer.Exit(1)
        with err_console.status("plotting"):
            plot_prices(series, plot, f"Spot prices since {start:%Y-%m-%d %H:%M} UTC ({product})")
        (console if output is Output.TABLE else err_console).print(f"wrote {plot}")
