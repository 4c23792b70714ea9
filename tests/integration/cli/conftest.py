"""spotctl against real services: the Kubernetes API emulation (``kube_api``) and PostgreSQL.

Commands run through typer's CliRunner in a worker thread: each runs its own event loop (``asyncio.run``)
while the emulation keeps serving in the test's loop.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result
from typer.testing import CliRunner

from spot_operator.cli.app import _register, app

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

Invoke = Callable[[Sequence[str]], Result]


@pytest.fixture
def spotctl() -> Invoke:
    """Run one spotctl command (synchronously, for tests without a served emulation)."""
    _register()
    runner = CliRunner()

    def invoke(args: Sequence[str]) -> Result:
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke


async def run_spotctl(args: Sequence[str]) -> Result:
    """Run one spotctl command in a thread, so the emulation serving in this loop can answer it."""
    _register()
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), catch_exceptions=False)


def flat(text: str) -> str:
    """Text with rich's box drawing removed and whitespace collapsed, for messages a panel wrapped."""
    return " ".join(re.sub(r"[\u2500-\u257f]", " ", text).split())


def example(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    return doc
