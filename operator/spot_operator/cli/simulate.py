"""`spotctl simulate`: replay spot traces through the operator and compare policies side by side."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from spot_operator.cli.app import app
from spot_operator.decisions.advisor import maybe_load_advisor
from spot_operator.decisions.datadir import DataMissing
from spot_operator.simulation.simulator import (
    POLICIES,
    POLICY_NAMES,
    ScenarioResult,
    SimulationParams,
    totals,
)

# Wide enough for the comparison table when the output is not a terminal (CI logs, files).
console = Console(width=max(Console().width, 100))


def _table(title: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("policy", no_wrap=True)
    for name in ("cost $", "saved %", "interr.", "switches", "down s", "avail. %", "+down $"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(
            row["policy"],
            f"{row['cost_usd']:,.2f}",
            f"{row['savings_percent']:.1f}",
            str(row["interruptions"]),
            str(row["switches"]),
            f"{row['downtime_seconds']:,.0f}",
            f"{row['availability_percent']:.3f}",
            f"{row['cost_with_downtime_usd']:,.2f}",
        )
    return table


def _load_model(path: Path | None, registry_dir: str | None, version: str | None) -> Any:
    """A given model for the xgboost policy: a file, or a registry version (default: the active one)."""
    from spot_operator.decisions.history import StaticHistory
    from spot_operator.decisions.registry import open_registry
    from spot_operator.decisions.xgb import XGBoostScorer

    if path is not None:
        return XGBoostScorer.from_bytes(path.read_bytes(), path.stem, StaticHistory())
    if registry_dir is not None:
        registry = open_registry(registry_dir)
        chosen = version or registry.pointer().active
        if chosen is None:
            raise typer.BadParameter(
                "the registry has no active model; pass --model-version", param_hint="--registry"
            )
        record, payload = registry.load(chosen)
        return XGBoostScorer.from_bytes(payload, record.version, StaticHistory(), record.horizon_hours)
    return None


@app.command("simulate")
def simulate_command(
    traces: Annotated[
        Path | None, typer.Option(help="Trace folder (spot-traces format); default: the shared data's.")
    ] = None,
    days: Annotated[
        float | None, typer.Option(help="Replay at most this many days of each scenario.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Where comparison.json and the PNG plots go.")] = Path(
        "simulation"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the price deviations and of model training.")] = 0,
    scenario: Annotated[
        list[str] | None, typer.Option(help="Only scenarios whose name contains this (repeatable).")
    ] = None,
    policy: Annotated[
        list[str] | None, typer.Option(help=f"Only these policies (repeatable): {', '.join(POLICY_NAMES)}.")
    ] = None,
    boot_seconds: Annotated[float, typer.Option(help="Launch to healthy.")] = 90.0,
    cutover_seconds: Annotated[
        float, typer.Option(help="Downtime of one traffic move to a ready instance.")
    ] = 5.0,
    notice_lead_seconds: Annotated[float, typer.Option(help="Interruption notice to reclaim.")] = 120.0,
    decision_interval_seconds: Annotated[float, typer.Option(help="auto-switch decision cycle.")] = 300.0,
    downtime_cost_per_hour: Annotated[
        float, typer.Option(help="The workload's cost of downtime (USD/h), as its policy declares it.")
    ] = 25.0,
    price_noise: Annotated[
        float, typer.Option(help="Relative spread of zone prices around the advisor's.")
    ] = 0.05,
    prices: Annotated[
        Path | None, typer.Option(help="CSV price series (pool,timestamp,price) instead of advisor prices.")
    ] = None,
    advisor: Annotated[
        Path | None, typer.Option(help="Spot Advisor JSON; default: the shared data's.")
    ] = None,
    model: Annotated[Path | None, typer.Option(help="An xgboost model file for the xgboost policy.")] = None,
    registry: Annotated[
        str | None, typer.Option(help="A model registry (directory or database URL) to take the model from.")
    ] = None,
    model_version: Annotated[
        str | None, typer.Option(help="Registry version (default: the active one).")
    ] = None,
    min_available: Annotated[int, typer.Option(help="A pool is available at this many instances.")] = 1,
    plots: Annotated[bool, typer.Option(help="Write PNG plots.")] = True,
) -> None:
    """Replay spot traces through the real planner and decision policy; print and write the comparison.

    Without --model/--registry the xgboost policy uses, for each data set, a model trained on the other
    data sets only.
    """
    from spot_operator.decisions.training import TrainParams
    from spot_operator.simulation.prices import load_price_series
    from spot_operator.simulation.report import write_all
    from spot_operator.simulation.runner import run_comparison
    from spot_operator.simulation.traces import load_traces, scenarios

    unknown = sorted(set(policy or ()) - set(POLICY_NAMES))
    if unknown:
        raise typer.BadParameter(f"unknown policy {', '.join(unknown)}", param_hint="--policy")
    try:
        every = scenarios(load_traces(traces))
    except DataMissing as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    chosen = [s for s in every if not scenario or any(f in s.name for f in scenario)]
    if not chosen:
        console.print(f"[red]no scenario matches {scenario}; known: {', '.join(s.name for s in every)}[/red]")
        raise typer.Exit(2)
    if days is not None:
        chosen = [s.truncated(days) for s in chosen]
    spot_advisor = maybe_load_advisor(advisor)
    if spot_advisor is None:
        console.print(
            "[yellow]Spot Advisor data not found: default savings (70 %) and band for every pool[/yellow]"
        )
    params = SimulationParams(
        boot_seconds=boot_seconds,
        cutover_seconds=cutover_seconds,
        notice_lead_seconds=notice_lead_seconds,
        decision_interval_seconds=decision_interval_seconds,
        downtime_cost_per_hour=downtime_cost_per_hour,
        price_noise=price_noise,
        seed=seed,
        min_available=min_available,
    )
    configs = [p for p in POLICIES if not policy or p.name in policy]
    given = _load_model(model, registry, model_version)
    series = load_price_series(prices) if prices is not None else None

    started = time.perf_counter()
    done: dict[str, float] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("simulating", total=len(chosen) * len(configs))

        def progress(label: str, fraction: float) -> None:
            if label.startswith("training"):
                bar.update(task, description=label)
                return
            done[label] = fraction
            bar.update(task, completed=sum(done.values()), description=label)

        results: list[ScenarioResult] = run_comparison(
            chosen,
            params,
            spot_advisor,
            policies=configs,
            training_pool=every,
            model=given,
            price_series=series,
            train_params=TrainParams(seed=seed),
            progress=progress,
        )
    elapsed = time.perf_counter() - started
    names = [c.name for c in configs]
    for r in results:
        days = r.scenario.duration_seconds / 86400
        title = f"{r.scenario.name}: {len(r.scenario.pools)} zones, {days:.1f} days"
        if r.scenario.note:
            title += f" ({r.scenario.note})"
        console.print(_table(title, [res.summary() for res in r.results]))
        held = r.model.get("held_out_metrics") if r.model else None
        if held:
            xgb, rules = held["xgboost"], held["rules"]
            console.print(
                f"  model {r.model['version']}: held-out log-loss {xgb['log_loss']:.3f} "
                f"(rules {rules['log_loss']:.3f}), AUC {xgb['auc']:.3f} (rules {rules['auc']:.3f}) "
                f"on {int(xgb['rows'])} samples"
            )
    rows = totals(results, names)
    console.print(_table(f"All {len(results)} scenarios", rows))
    meta = {
        "traces": str(traces) if traces else "shared data",
        "scenarios": [r.scenario.name for r in results],
        "policies": {c.name: c.description for c in configs},
        "advisor": spot_advisor.source if spot_advisor else None,
        "wall_seconds": round(elapsed, 2),
    }
    written = write_all(out, results, params, names, meta, plots=plots)
    console.print(f"wrote {len(written)} files to {out} in {elapsed:.1f} s")
