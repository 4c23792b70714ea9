"""``-o table|json|yaml``: the same choice for every spotctl command that reports data."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any

import typer
import yaml
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from spot_operator.cli.cluster import err_console


class Output(StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


OutputOption = Annotated[
    Output, typer.Option("--output", "-o", help="table for people; json or yaml for scripts.")
]


def dump(data: Any, output: Output) -> None:
    """Print ``data`` (JSON-safe) as JSON or YAML on stdout."""
    if output is Output.JSON:
        typer.echo(json.dumps(data, indent=2))
    else:
        typer.echo(yaml.safe_dump(data, sort_keys=False), nl=False)


def progress_bar() -> Progress:
    """A bar on stderr for work over many items; shown only in a terminal, gone when done."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )
