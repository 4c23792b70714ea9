"""What the heartbeat says about the instance: health (ok | degraded | failing), why, and sync progress."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

from spot_agent.config import HealthConfig
from spot_agent.protocol import DETAIL_MAX_LENGTH, Health

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HealthReading:
    health: Health
    detail: str = ""
    sync_progress: int = 100


def read_sync_progress(path: Path | None) -> tuple[int, str]:
    """(progress, problem) from a file holding an integer 0..100; 100 when none is configured."""
    if path is None:
        return 100, ""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return 0, f"sync progress file {path} does not exist yet"
    except OSError as exc:
        return 0, f"cannot read sync progress file {path}: {exc.strerror}"
    try:
        value = int(float(text))
    except ValueError:
        return 0, f"sync progress file {path} holds {text[:40]!r}, not a number 0..100"
    return max(0, min(100, value)), ""


def combine(
    command_health: Health, command_detail: str, imds_problem: str, sync_problem: str
) -> tuple[Health, str]:
    """The worst of the parts; the detail lists every problem."""
    order = [Health.OK, Health.DEGRADED, Health.FAILING]
    health = command_health
    if imds_problem or sync_problem:
        health = max(health, Health.DEGRADED, key=order.index)
    detail = "; ".join(p for p in (command_detail, imds_problem, sync_problem) if p)
    return health, detail[:DETAIL_MAX_LENGTH]


async def run_check(config: HealthConfig) -> tuple[Health, str]:
    """Run the health command: exit 0 ok, 1 degraded, anything else (or a timeout) failing."""
    if config.command is None:
        return Health.OK, ""
    try:
        proc = await asyncio.create_subprocess_exec(
            *config.command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return Health.FAILING, f"health command cannot start: {exc.strerror or exc}"
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), config.timeout_seconds)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):  # it ended on its own meanwhile
            proc.kill()
        await proc.wait()
        return Health.FAILING, f"health command timed out after {config.timeout_seconds:g} s"
    text = output.decode("utf-8", errors="replace").strip()[-300:]
    if proc.returncode == 0:
        return Health.OK, ""
    health = Health.DEGRADED if proc.returncode == 1 else Health.FAILING
    return health, f"health command exited {proc.returncode}" + (f": {text}" if text else "")


async def assess(config: HealthConfig, imds_problem: str = "") -> HealthReading:
    command_health, command_detail = await run_check(config)
    progress, sync_problem = read_sync_progress(config.sync_progress_file)
    health, detail = combine(command_health, command_detail, imds_problem, sync_problem)
    return HealthReading(health, detail, progress)
