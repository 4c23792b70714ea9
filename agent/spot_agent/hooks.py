"""User hooks: a command (the pre-stop drain) run when a notice arrives, bounded by a timeout.

The command runs in its own process group, so on timeout the whole group (the command and whatever
it started) gets SIGTERM, then SIGKILL after a short grace. Only the last 4 KiB of each output stream
is kept. The result becomes a HookReport.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from spot_agent.config import HookConfig
from spot_agent.notices import idempotency_key
from spot_agent.protocol import TAIL_MAX_LENGTH, HookReport, NoticeReport

log = logging.getLogger(__name__)

KILL_GRACE_SECONDS = 2.0


class Tail:
    """The last ``limit`` bytes written to it."""

    def __init__(self, limit: int = TAIL_MAX_LENGTH) -> None:
        self.limit = limit
        self._buf = bytearray()

    def write(self, chunk: bytes) -> None:
        self._buf.extend(chunk)
        if len(self._buf) > self.limit:
            del self._buf[: len(self._buf) - self.limit]

    def text(self) -> str:
        text = self._buf.decode("utf-8", errors="replace")
        return text[-self.limit :]


async def _pump(stream: asyncio.StreamReader | None, tail: Tail) -> None:
    if stream is None:
        return
    while chunk := await stream.read(65536):
        tail.write(chunk)


def notice_env(notice: NoticeReport | None) -> dict[str, str]:
    """What a hook learns about the notice that ran it."""
    if notice is None:
        return {}
    env = {
        "SPOT_AGENT_INSTANCE_ID": notice.instance_id,
        "SPOT_AGENT_NOTICE_KIND": notice.kind.value,
        "SPOT_AGENT_NOTICE_TIME": notice.notice_time.isoformat(),
    }
    if notice.action is not None:
        env["SPOT_AGENT_NOTICE_ACTION"] = notice.action.value
    if notice.deadline is not None:
        env["SPOT_AGENT_NOTICE_DEADLINE"] = notice.deadline.isoformat()
    return env


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group is already gone: nothing to kill
        os.killpg(pgid, sig)


async def run_hook(
    name: str,
    hook: HookConfig,
    instance_id: str,
    notice: NoticeReport | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> HookReport:
    started_at = datetime.now(UTC)
    started = time.monotonic()
    trigger = notice.idempotency_key if notice is not None else None
    key = idempotency_key(instance_id, "hook", name, trigger or started_at.isoformat())
    env = {**os.environ, **notice_env(notice), **(extra_env or {})}
    out, err = Tail(), Tail()
    exit_code: int | None = None
    timed_out = False
    error: str | None = None
    log.info("running hook", extra={"hook": name, "timeout_seconds": hook.timeout_seconds})
    try:
        proc = await asyncio.create_subprocess_exec(
            *hook.command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
    except OSError as exc:
        error = f"cannot start {hook.command[0]!r}: {exc.strerror or exc}"
    else:
        pumps = asyncio.gather(_pump(proc.stdout, out), _pump(proc.stderr, err))
        try:
            exit_code = await asyncio.wait_for(proc.wait(), hook.timeout_seconds)
        except TimeoutError:
            timed_out = True
            _kill_group(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), KILL_GRACE_SECONDS)
            except TimeoutError:
                _kill_group(proc.pid, signal.SIGKILL)
                await proc.wait()
            _kill_group(proc.pid, signal.SIGKILL)  # stragglers that ignored SIGTERM
        try:
            # A grandchild that left the group may hold the pipes open: do not wait for it forever.
            await asyncio.wait_for(pumps, KILL_GRACE_SECONDS)
        except TimeoutError:
            err.write(b"\n[spot-agent: output still open after the hook ended; stopped reading]\n")
    report = HookReport(
        instance_id=instance_id,
        hook=name,
        trigger=trigger,
        exit_code=None if timed_out else exit_code,
        timed_out=timed_out,
        error=error,
        started_at=started_at,
        duration_seconds=round(time.monotonic() - started, 3),
        stdout_tail=out.text(),
        stderr_tail=err.text(),
        idempotency_key=key,
    )
    level = logging.INFO if report.ok else logging.ERROR
    log.log(
        level,
        "hook finished",
        extra={
            "hook": name,
            "exit_code": report.exit_code,
            "timed_out": timed_out,
            "error": error,
            "duration_seconds": report.duration_seconds,
        },
    )
    return report
