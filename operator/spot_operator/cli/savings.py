"""`spotctl savings`: what each SpotAgent saved against on-demand, and the total, from the store."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from spot_operator.cli.app import app
from spot_operator.cli.cluster import err_console
from spot_operator.cli.database import DatabaseOption, read
from spot_operator.cli.output import Output, OutputOption, dump, progress_bar
from spot_operator.cli.plots import plot_savings
from spot_operator.ports import AgentSavings
from spot_operator.storage.history import split_agent, switched_agents
from spot_operator.storage.savings import savings_for

console = Console(width=max(Console().width, 120), markup=False)


@dataclass(frozen=True)
class SavingsRow:
    agent: str
    hourly_usd: float  # saving per hour right now
    percent: float | None  # of the on-demand price, right now (None for the total)
    last_day_usd: float
    last_day_percent: float | None  # of what on-demand would have cost over the last 24 h
    to_date_usd: float
    unpriced_hours: float


def row(item: AgentSavings) -> SavingsRow:
    day = item.hourly[-24:]
    on_demand = sum(p.on_demand_usd for p in day)
    saved = sum(p.saved_usd for p in day)
    return SavingsRow(
        agent=item.agent,
        hourly_usd=item.hourly_usd,
        percent=item.percent,
        last_day_usd=saved,
        last_day_percent=100.0 * saved / on_demand if on_demand > 0 else None,
        to_date_usd=item.to_date_usd,
        unpriced_hours=item.unpriced_hours,
    )


def total(rows: list[SavingsRow], items: list[AgentSavings]) -> SavingsRow:
    on_demand = sum(p.on_demand_usd for item in items for p in item.hourly[-24:])
    saved = sum(r.last_day_usd for r in rows)
    return SavingsRow(
        agent="total",
        hourly_usd=sum(r.hourly_usd for r in rows),
        percent=None,
        last_day_usd=saved,
        last_day_percent=100.0 * saved / on_demand if on_demand > 0 else None,
        to_date_usd=sum(r.to_date_usd for r in rows),
        unpriced_hours=sum(r.unpriced_hours for r in rows),
    )


def _agents(value: list[str] | None) -> list[str] | None:
    if not value:
        return None
    for agent in value:
        try:
            split_agent(agent)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--agent") from None
    return list(dict.fromkeys(value))


def _fetch(url: str | None, agents: list[str] | None, now: datetime, hours: int) -> list[AgentSavings]:
    def query(session: Session) -> list[AgentSavings]:
        names = agents if agents is not None else switched_agents(session)
        out = []
        with progress_bar() as progress:
            task = progress.add_task("computing savings", total=len(names))
            for name in names:
                progress.update(task, description=f"computing savings of {name}")
                out.append(savings_for(session, name, now, hours=hours))
                progress.advance(task)
        return out

    return read(url, query)


def render(rows: list[SavingsRow], summed: SavingsRow | None) -> Table:
    table = Table(title="savings against on-demand", title_justify="left", header_style="bold")
    table.add_column("agent", no_wrap=True)
    for name in ("now $/h", "now %", "last 24 h $", "last 24 h %", "to date $", "unpriced h"):
        table.add_column(name, justify="right", no_wrap=True)

    def add(r: SavingsRow, style: str = "") -> None:
        table.add_row(
            r.agent,
            f"{r.hourly_usd:.4f}",
            "-" if r.percent is None else f"{r.percent:.1f}",
            f"{r.last_day_usd:.2f}",
            "-" if r.last_day_percent is None else f"{r.last_day_percent:.1f}",
            f"{r.to_date_usd:.2f}",
            f"{r.unpriced_hours:.1f}",
            style=style,
        )

    for r in rows:
        add(r)
    if summed is not None:
        table.add_section()
        add(summed, "bold")
    return table


@app.command("savings")
def savings_command(
    agent: Annotated[
        list[str] | None,
        typer.Option(
            help="Only this agent, as NAMESPACE/NAME (repeatable); default: every agent in the store."
        ),
    ] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Also write a PNG of the cumulative savings here.")
    ] = None,
    hours: Annotated[int, typer.Option(min=1, help="Hours of hourly savings to compute and plot.")] = 48,
    database_url: DatabaseOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Savings per agent (now, last 24 h, to date) and their total, from the switch history and prices."""
    wanted = _agents(agent)
    now = datetime.now(UTC)
    items = _fetch(database_url, wanted, now, hours)
    rows = [row(item) for item in items]
    summed = total(rows, items) if rows else None
    if output is not Output.TABLE:
        doc = {
            "agents": [asdict(r) for r in rows],
            "total": None if summed is None else asdict(summed),
        }
        dump(doc, output)
    elif not rows:
        console.print("no savings recorded yet: no agent has a switch in the store")
    else:
        console.print(render(rows, summed))
    if plot is not None:
        if not rows:
            err_console.print(f"nothing to plot: {plot} not written")
            raise typer.Exit(1)
        with err_console.status("plotting"):
            plot_savings(
                items, plot, f"Savings against on-demand, last {hours} h (to {now:%Y-%m-%d %H:%M} UTC)"
            )
        (console if output is Output.TABLE else err_console).print(f"wrote {plot}")
