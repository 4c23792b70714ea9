"""User hooks as real subprocesses: output tails, exit codes, the environment, and timeouts that kill
the whole process group."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from spot_agent.config import HookConfig
from spot_agent.hooks import Tail, run_hook
from spot_agent.protocol import InstanceAction, NoticeKind, NoticeReport

IID = "i-1234567890abcdef0"
NOTICE = NoticeReport(
    instance_id=IID,
    kind=NoticeKind.INTERRUPTION,
    action=InstanceAction.STOP,
    notice_time=datetime.now(UTC),
    deadline=datetime.now(UTC) + timedelta(minutes=2),
    idempotency_key="notice-key-000001",
)


def py(code: str, timeout: float = 30.0) -> HookConfig:
    return HookConfig(command=(sys.executable, "-c", code), timeout_seconds=timeout)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purpose.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_success_with_output_and_notice_environment() -> None:
    code = (
        "import os, sys\n"
        "print('draining', os.environ['SPOT_AGENT_NOTICE_ACTION'], os.environ['SPOT_AGENT_INSTANCE_ID'])\n"
        "print('warn', file=sys.stderr)\n"
        "print(os.environ['SPOT_AGENT_NOTICE_DEADLINE'])\n"
    )
    report = await run_hook("pre-stop", py(code), IID, NOTICE)
    assert report.ok
    assert report.exit_code == 0
    assert report.stdout_tail.startswith(f"draining stop {IID}\n")
    assert NOTICE.deadline is not None
    assert NOTICE.deadline.isoformat() in report.stdout_tail
    assert report.stderr_tail == "warn\n"
    assert report.trigger == NOTICE.idempotency_key
    assert report.hook == "pre-stop"
    assert report.duration_seconds >= 0


async def test_failure_exit_code() -> None:
    report = await run_hook("pre-stop", py("import sys; sys.exit(7)"), IID, NOTICE)
    assert report.exit_code == 7
    assert not report.ok
    assert not report.timed_out


async def test_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    code = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "print('started', flush=True)\n"
        "time.sleep(60)\n"
    )
    started = time.monotonic()
    report = await run_hook("pre-stop", py(code, timeout=1.5), IID, NOTICE)
    elapsed = time.monotonic() - started
    assert report.timed_out
    assert report.exit_code is None
    assert not report.ok
    assert "started" in report.stdout_tail
    assert elapsed < 15  # killed, not waited for
    grandchild = int(pid_file.read_text())
    for _ in range(100):  # up to 5 s for the kernel to reap it
        if not alive(grandchild):
            break
        await asyncio.sleep(0.05)
    assert not alive(grandchild)


async def test_missing_command_is_reported_not_raised() -> None:
    hook = HookConfig(command=("/nonexistent/drain",), timeout_seconds=5)
    report = await run_hook("pre-stop", hook, IID, NOTICE)
    assert report.exit_code is None
    assert report.error is not None
    assert "/nonexistent/drain" in report.error
    assert not report.ok


async def test_only_the_tail_of_long_output_is_kept() -> None:
    report = await run_hook("pre-stop", py("print('x' * 100000 + 'END')"), IID, NOTICE)
    assert len(report.stdout_tail) == 4096
    assert report.stdout_tail.endswith("END\n")


def test_tail_keeps_the_last_bytes() -> None:
    tail = Tail(limit=5)
    tail.write(b"abc")
    tail.write(b"defg")
    assert tail.text() == "cdefg"
