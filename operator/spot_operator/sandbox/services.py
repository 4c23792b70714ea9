"""Start and stop what the sandbox runs: the moto server, the real operator (``main.run``) in this loop, and
the operator's logs (to a file, so they do not interleave with the timeline)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from spot_operator.main import Wiring, run
from spot_operator.runtime.operator import Operator
from spot_operator.sandbox.moto import MotoServer
from spot_operator.settings import Settings

READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0


class SandboxFailure(RuntimeError):
    """Something the sandbox waited for did not happen (or a part of it failed): the message says what."""


@contextlib.asynccontextmanager
async def moto_running() -> AsyncIterator[MotoServer]:
    if importlib.util.find_spec("moto") is None:
        raise SandboxFailure(
            "moto is not installed: the sandbox needs the development dependencies "
            "(make demo installs them; or pip install -r requirements/dev.txt)"
        )
    server = MotoServer()
    try:
        await asyncio.to_thread(server.start)
    except RuntimeError as exc:
        raise SandboxFailure(f"the moto server did not start: {exc}") from None
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


@dataclass
class RunningOperator:
    op: Operator
    task: asyncio.Task[int]
    agent_api: str
    exit_code: int | None = None


@contextlib.asynccontextmanager
async def operator_running(settings: Settings, wiring: Wiring) -> AsyncIterator[RunningOperator]:
    """``main.run`` in this loop until the block ends, then a graceful stop (exit code on the result)."""
    stop = asyncio.Event()
    started: list[Operator] = []
    task = asyncio.create_task(run(settings, wiring, stop, started.append), name="spot-operator")
    health = f"http://127.0.0.1:{settings.health_port}/readyz"
    try:
        await _until_ready(task, health)
    except BaseException:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, STOP_TIMEOUT_SECONDS)
        raise
    running = RunningOperator(started[0], task, f"http://127.0.0.1:{settings.agent_api_port}")
    try:
        yield running
    finally:
        stop.set()
        try:
            running.exit_code = await asyncio.wait_for(task, STOP_TIMEOUT_SECONDS)
        except TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise SandboxFailure(f"the operator did not stop within {STOP_TIMEOUT_SECONDS:.0f} s") from None


async def _until_ready(task: asyncio.Task[int], url: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT_SECONDS
    async with aiohttp.ClientSession() as http:
        while loop.time() < deadline:
            if task.done():
                code = task.result()  # raises what killed it
                raise SandboxFailure(f"the operator exited with {code} before it was ready")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise SandboxFailure(f"the operator was not ready within {READY_TIMEOUT_SECONDS:.0f} s ({url})")


@contextlib.contextmanager
def logs_to(path: Path, level: int = logging.INFO) -> Iterator[Path]:
    """Send every log record (the operator's, kopf's) to ``path`` for the duration of the block."""
    root = logging.getLogger()
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.setLevel(level)
    previous = root.level
    root.addHandler(handler)
    if previous > level or previous == logging.NOTSET:
        root.setLevel(level)
    quiet = {
        name: logging.getLogger(name).level for name in ("botocore", "boto3", "urllib3", "aiohttp.access")
    }
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        handler.close()
        root.setLevel(previous)
        for name, old in quiet.items():
            logging.getLogger(name).setLevel(old)


def tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
