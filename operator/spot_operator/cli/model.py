"""`spotctl model train|upload|activate|rollback|list`: the interruption model and its registry."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from spot_operator.cli.app import app
from spot_operator.decisions.datadir import DataMissing

console = Console(width=max(Console().width, 120))
model_app = typer.Typer(help="Train, store and activate the interruption model.", no_args_is_help=True)
app.add_typer(model_app, name="model")

RegistryOption = Annotated[
    str,
    typer.Option(
        "--registry",
        envvar="SPOT_OPERATOR_MODEL_DIR",
        help="The model registry: a directory (index.json, models/) or the operator's database URL "
        "(postgresql://..., sqlite:///...), whose model_versions table then holds it.",
    ),
]


def _registry(where: str) -> Any:
    from spot_operator.decisions.registry import open_registry

    return open_registry(where)


def _metadata_path(model: Path) -> Path:
    return model.with_suffix(".json")


@model_app.command("train")
def train_command(
    out: Annotated[
        Path, typer.Option(help="Where to write the model (.ubj) and its metadata (.json).")
    ] = Path("model.ubj"),
    traces: Annotated[Path | None, typer.Option(help="Trace folder; default: the shared data's.")] = None,
    advisor: Annotated[
        Path | None, typer.Option(help="Spot Advisor JSON; default: the shared data's.")
    ] = None,
    valid_fraction: Annotated[float, typer.Option(help="Share of each data set's time held out.")] = 0.25,
    horizon_hours: Annotated[float, typer.Option(help="Label: reclaimed within this many hours.")] = 1.0,
    step_seconds: Annotated[float, typer.Option(help="One sample per pool every this many seconds.")] = 600.0,
    rounds: Annotated[int, typer.Option(help="Boosting rounds.")] = 150,
    max_depth: Annotated[int, typer.Option(help="Tree depth.")] = 4,
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
    nthread: Annotated[int, typer.Option(help="xgboost threads.")] = 1,
    registry: Annotated[
        str | None, typer.Option(help="Also upload into this registry (directory or URL).")
    ] = None,
    activate: Annotated[bool, typer.Option(help="Activate it after uploading (with --registry).")] = False,
) -> None:
    """Train on trace files with a time-based split; print log-loss, AUC and calibration against the rules."""
    from spot_operator.decisions.advisor import maybe_load_advisor
    from spot_operator.decisions.training import (
        TrainParams,
        format_report,
        samples_from_scenarios,
        train_and_evaluate,
    )
    from spot_operator.simulation.traces import load_traces, scenarios

    try:
        found = scenarios(load_traces(traces))
    except DataMissing as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    spot_advisor = maybe_load_advisor(advisor)
    samples = samples_from_scenarios(found, spot_advisor, horizon_hours, step_seconds)
    params = TrainParams(rounds=rounds, max_depth=max_depth, seed=seed, nthread=nthread)
    report = train_and_evaluate(samples, params, valid_fraction, horizon_hours)
    console.print(format_report(report), highlight=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(report.payload)
    metadata = {
        "kind": "xgboost",
        "horizon_hours": horizon_hours,
        "metrics": report.flat_metrics(),
        "data_from": report.data_from.isoformat() if report.data_from else None,
        "data_to": report.data_to.isoformat() if report.data_to else None,
        "params": report.params_dict(),
        "notes": f"{len(found)} trace scenarios; {report.rows_train} training, "
        f"{report.rows_valid} held-out samples",
    }
    _metadata_path(out).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    console.print(f"wrote {out} and {_metadata_path(out)}")
    if registry is not None:
        _upload(registry, out, _metadata_path(out), activate)


def _upload(registry_dir: str, model: Path, metadata: Path | None, activate: bool) -> None:
    meta: dict[str, Any] = {}
    meta_path = metadata or _metadata_path(model)
    if meta_path.exists():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    reg = _registry(registry_dir)
    record = reg.upload(
        model.read_bytes(),
        kind=meta.get("kind", "xgboost"),
        metrics=meta.get("metrics", {}),
        data_from=datetime.fromisoformat(meta["data_from"]) if meta.get("data_from") else None,
        data_to=datetime.fromisoformat(meta["data_to"]) if meta.get("data_to") else None,
        horizon_hours=float(meta.get("horizon_hours", 1.0)),
        params=meta.get("params", {}),
        notes=meta.get("notes", ""),
    )
    console.print(f"uploaded {record.version} ({record.size} bytes, sha256 {record.sha256[:12]})")
    if activate:
        pointer = reg.activate(record.version)
        console.print(f"active: {pointer.active} (fallback: {pointer.fallback or 'the rules'})")


@model_app.command("upload")
def upload_command(
    model: Annotated[Path, typer.Argument(help="The model file (.ubj) written by `spotctl model train`.")],
    registry: RegistryOption = "models",
    metadata: Annotated[
        Path | None, typer.Option(help="Its metadata JSON (default: beside the model).")
    ] = None,
    activate: Annotated[bool, typer.Option(help="Activate it at once.")] = False,
) -> None:
    """Store a model with its metrics and training data range; refuses files that are not a model."""
    from spot_operator.decisions.registry import RegistryError
    from spot_operator.decisions.xgb import ModelLoadError

    try:
        _upload(registry, model, metadata, activate)
    except (ModelLoadError, RegistryError, OSError) as exc:
        console.print(f"[red]upload refused: {exc}[/red]")
        raise typer.Exit(1) from None


@model_app.command("activate")
def activate_command(
    version: Annotated[str, typer.Argument(help="The version to make active.")],
    registry: RegistryOption = "models",
) -> None:
    """Make a version active; the previously active one becomes its fallback. Operators pick it up live."""
    from spot_operator.decisions.registry import RegistryError

    try:
        pointer = _registry(registry).activate(version)
    except (RegistryError, KeyError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"active: {pointer.active} (fallback: {pointer.fallback or 'the rules'})")


@model_app.command("rollback")
def rollback_command(registry: RegistryOption = "models") -> None:
    """Deactivate the active model: its fallback becomes active (none left: the rules answer)."""
    from spot_operator.decisions.registry import RegistryError

    try:
        pointer = _registry(registry).rollback()
    except RegistryError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"active: {pointer.active or 'the rules'} (fallback: {pointer.fallback or 'the rules'})")


@model_app.command("list")
def list_command(registry: RegistryOption = "models") -> None:
    """Every stored model with its status, held-out metrics and training data range."""
    listed = _registry(registry).list()
    table = Table(title=f"models in {registry}", title_justify="left", header_style="bold")
    for column in ("version", "status", "created", "log-loss", "AUC", "rules log-loss", "trained on"):
        table.add_column(column, no_wrap=True)
    for item in listed:
        r = item.record
        m = r.metrics
        span = f"{r.data_from:%Y-%m-%d} .. {r.data_to:%Y-%m-%d}" if r.data_from and r.data_to else "-"
        table.add_row(
            r.version,
            item.status,
            f"{r.created_at:%Y-%m-%d %H:%M}",
            f"{m['valid_xgboost_log_loss']:.4f}" if "valid_xgboost_log_loss" in m else "-",
            f"{m['valid_xgboost_auc']:.3f}" if "valid_xgboost_auc" in m else "-",
            f"{m['valid_rules_log_loss']:.4f}" if "valid_rules_log_loss" in m else "-",
            span,
        )
    console.print(table)
    if not listed:
        console.print("no models yet: `spotctl model train --registry DIR --activate`")
