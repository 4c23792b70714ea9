"""`spotctl sandbox`: the real operator on a moto server, a Kubernetes API emulation and a SQLite store,
driven through a rebalance recommendation and an interruption notice, printed as a live timeline."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from spot_operator.cli.app import app
from spot_operator.sandbox.changes import usd
from spot_operator.sandbox.ledger import monthly
from spot_operator.sandbox.runner import DEFAULT_BUDGET_SECONDS, SandboxOptions, SandboxResult, run_sandbox
from spot_operator.sandbox.timeline import Event

PLACEHOLDER_PRICE = 0.001  # moto answers DescribeSpotPriceHistory with $0.00001 for every pool

STYLES = {
    "applied": "bold yellow",
    "rebalance-notice": "bold yellow",
    "interruption-notice": "bold yellow",
    "saving": "green",
    "target-group": "bold green",
    "primary": "cyan",
    "agent-Ready": "green",
    "replica-Ready": "green",
    "switch-Completed": "green",
    "elastic-ip": "bold green",
    "instance-terminated": "magenta",
}
INFRA = {"moto-up", "kube-up", "store-up", "aws-ready", "operator-ready", "operator-stopped", "kube-down"}
INFRA |= {"moto-down", "stopped"}


def render(event: Event) -> Text:
    style = STYLES.get(event.kind, "dim" if event.kind in INFRA else "")
    text = Text(f"{event.at:7.2f} s  ", style="dim")
    text.append(f"{event.agent:<13} " if event.agent else " " * 14, style="bold")
    text.append(event.text, style=style)
    if event.after is not None:
        text.append(f"  ({event.after[1]:.2f} s after {event.after[0]})", style="dim")
    return text


def summary(result: SandboxResult, console: Console) -> None:
    out = result.outcome
    if out.promoted and out.notice_to_elastic_ip_seconds is not None:
        switch = result.final.switches.get(out.switch or "")
        timings = ""
        if switch is not None and switch.cutover_seconds is not None:
            timings = f"; the operator's cutover took {switch.cutover_seconds:.2f} s"
        console.print(
            f"Failover: {out.old_primary} -> {out.promoted}; Elastic IP moved "
            f"{out.notice_to_elastic_ip_seconds:.2f} s after the interruption notice{timings}."
        )
    table = Table(title="Savings so far, against running each primary on on-demand")
    for col in ("SpotAgent", "Primary pool", "Spot", "On-demand", "Saving now", "Saved while watched"):
        table.add_column(col, justify="left" if col in ("SpotAgent", "Primary pool") else "right")
    low = False
    for name, agent in result.final.agents.items():
        book = result.ledger.agents.get(name)
        price, od = agent.hourly_price, agent.on_demand_price
        low = low or (price is not None and price < PLACEHOLDER_PRICE)
        now = "-"
        if agent.savings_hourly is not None and agent.savings_percent is not None:
            now = f"{agent.savings_percent:.1f} % (${monthly(agent.savings_hourly):,.0f}/month)"
        saved = "-"
        if book is not None and book.saved_percent is not None:
            saved = f"{usd(book.saved_usd)} in {book.seconds:.0f} s"
        table.add_row(
            name,
            agent.primary_pool or "-",
            f"{usd(price)}/h" if price is not None else "-",
            f"{usd(od)}/h" if od is not None else "-",
            now,
            saved,
        )
    console.print(table)
    if low:
        console.print(
            "[dim]moto's spot prices are placeholders ($0.00001/h): the figures show the accounting, "
            "not a market.[/dim]"
        )
    if result.store is not None:
        s = result.store
        console.print(
            f"Store (SQLite): {s.price_observations} spot price observations over {s.pools} pools, "
            f"{s.switches} switch(es), {s.decisions} decision(s) recorded."
        )


@app.command()
def sandbox(
    examples: Path | None = typer.Option(
        None, help="Directory with the example manifests (default: the repository's examples/)."
    ),
    log_file: Path | None = typer.Option(
        None, "--log-file", help="Keep the operator's log in this file (default: discarded at the end)."
    ),
    budget: float = typer.Option(
        DEFAULT_BUDGET_SECONDS, help="Give up (and clean up) after this many seconds."
    ),
) -> None:
    """Run the real operator against moto, a Kubernetes API emulation and SQLite; inject a rebalance
    recommendation and an interruption notice; print the timeline; stop everything it started."""
    console = Console(width=None if Console().is_terminal else 140)
    console.rule("spot-optimizer sandbox: the real operator on moto, a Kubernetes API emulation and SQLite")
    options = SandboxOptions(budget_seconds=budget, log_file=log_file)
    if examples is not None:
        options = replace(options, examples=examples)
    result = asyncio.run(run_sandbox(options, show=lambda event: console.print(render(event))))
    console.print()
    if not result.ok:
        console.print(f"[bold red]sandbox failed:[/bold red] {result.error}")
        if result.log_tail:
            console.rule("the operator's last log lines", style="red")
            console.print(result.log_tail, markup=False, highlight=False)
        console.print(f"Finished in {result.seconds:.1f} s.")
        raise typer.Exit(1)
    summary(result, console)
    console.print(f"[bold]Finished in {result.seconds:.1f} s[/bold]; everything it started is stopped.")
