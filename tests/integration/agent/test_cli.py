"""``spot-agent`` as a process: --help, check, run --dry-run and run --once against the IMDS emulator
and a real agent API; and the package installed by install.sh into a fresh virtualenv."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from spot_operator.planning.model import NoticeKind as PlanKind
from tests.fakes.imds import ImdsEmulator
from tests.integration.agent_api.harness import AGENT, INSTANCE, Api

ROOT = Path(__file__).resolve().parents[3]
PYTHONPATH = os.pathsep.join(str(ROOT / p) for p in ("agent", "operator", "."))


def agent_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """A clean environment: only the SPOT_AGENT_* given, and a config path that does not exist."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOT_AGENT_")}
    env["PYTHONPATH"] = PYTHONPATH
    env["SPOT_AGENT_CONFIG"] = str(tmp_path / "config.toml")
    (tmp_path / "config.toml").write_text("")
    env.update({f"SPOT_AGENT_{k.upper()}": v for k, v in settings.items()})
    return env


def spot_agent(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spot_agent", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_help(tmp_path: Path) -> None:
    result = spot_agent("--help", env=agent_env(tmp_path))
    assert result.returncode == 0
    assert "run" in result.stdout
    assert "check" in result.stdout
    run_help = spot_agent("run", "--help", env=agent_env(tmp_path))
    assert "--dry-run" in run_help.stdout
    assert "--once" in run_help.stdout
    assert "--config" in run_help.stdout
    assert spot_agent("--version", env=agent_env(tmp_path)).stdout.strip() == "spot-agent 0.1.0"


def test_check_prints_what_imds_shows(tmp_path: Path, imds: ImdsEmulator) -> None:
    imds.schedule_interruption(action="stop")
    result = spot_agent("check", env=agent_env(tmp_path, imds_endpoint=imds.url))
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["instanceId"] == "i-1234567890abcdef0"
    assert seen["pool"] == "m5.large.us-east-1a"
    [notice] = seen["notices"]
    assert notice["kind"] == "interruption"
    assert notice["action"] == "stop"


def test_check_without_imds_exits_3_naming_the_hop_limit(tmp_path: Path, imds: ImdsEmulator) -> None:
    url = imds.url
    imds.stop()
    result = spot_agent("check", env=agent_env(tmp_path, imds_endpoint=url, imds_timeout_seconds="0.5"))
    assert result.returncode == 3
    seen = json.loads(result.stdout)
    assert seen["ok"] is False
    assert "hop limit" in seen["error"]


def test_bad_configuration_exits_2_naming_the_setting(tmp_path: Path) -> None:
    result = spot_agent("run", env=agent_env(tmp_path, poll_interval_seconds="0.2"))
    assert result.returncode == 2
    assert "SPOT_AGENT_POLL_INTERVAL_SECONDS" in result.stderr
    assert "greater than or equal to 1" in result.stderr
    missing = spot_agent("run", env=agent_env(tmp_path))
    assert missing.returncode == 2
    assert "operator_url (SPOT_AGENT_OPERATOR_URL)" in missing.stderr


def test_dry_run_once_prints_the_reports(tmp_path: Path, imds: ImdsEmulator) -> None:
    imds.schedule_rebalance()
    env = agent_env(tmp_path, imds_endpoint=imds.url, namespace="prod", name="web")
    result = spot_agent("run", "--dry-run", "--once", env=env)
    assert result.returncode == 0, result.stderr
    lines = json_lines(result.stdout)
    paths = [line["wouldPost"] for line in lines]
    assert paths == ["/v1/namespaces/prod/agents/web/notices", "/v1/namespaces/prod/agents/web/heartbeat"]
    assert lines[0]["body"]["kind"] == "rebalance"
    assert lines[1]["body"]["health"] == "ok"
    logs = json_lines(result.stderr)  # structured logs, one JSON object per line
    assert any(entry["message"] == "spot-agent started" and entry["dry_run"] for entry in logs)
    assert not (tmp_path / "spool").exists()


async def test_dry_run_daemon_reports_a_later_interruption_and_stops_on_sigterm(
    tmp_path: Path, imds: ImdsEmulator
) -> None:
    env = agent_env(
        tmp_path, imds_endpoint=imds.url, poll_interval_seconds="1", heartbeat_interval_seconds="60"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "spot_agent", "run", "--dry-run",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        first = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
        assert first["wouldPost"].endswith("/heartbeat")
        imds.schedule_interruption(after_seconds=1, action="hibernate")
        second = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
        assert second["body"]["kind"] == "interruption"
        assert second["body"]["action"] == "hibernate"
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_run_once_delivers_to_the_operator(tmp_path: Path, imds: ImdsEmulator, api: Api) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(api.token)
    env = agent_env(
        tmp_path,
        imds_endpoint=imds.url,
        operator_url=api.url,
        namespace="prod",
        name="web",
        token_file=str(token_file),
        spool_dir=str(tmp_path / "spool"),
    )
    imds.schedule_interruption()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "spot_agent", "run", "--once",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, stderr.decode()
    record = api.sink.record(AGENT)
    assert (INSTANCE, PlanKind.INTERRUPTION) in record.notices
    assert record.heartbeat_count == 1
    assert not list((tmp_path / "spool").glob("*.json"))
    assert api.token not in stderr.decode()  # the token is never logged


async def test_run_once_with_the_operator_down_keeps_the_reports(tmp_path: Path, imds: ImdsEmulator) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("some-token")
    env = agent_env(
        tmp_path,
        imds_endpoint=imds.url,
        operator_url="http://127.0.0.1:9",  # discard port: nothing listens
        namespace="prod",
        name="web",
        token_file=str(token_file),
        spool_dir=str(tmp_path / "spool"),
    )
    imds.schedule_rebalance()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "spot_agent", "run", "--once",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    assert "some-token" not in stderr.decode()
    spooled = sorted(p.name for p in (tmp_path / "spool").glob("*.json"))
    assert [name.split(".")[1] for name in spooled] == ["notice", "heartbeat"]


# ------------------------------------------------------------------------------------ installation


def _source_copy(target: Path) -> Path:
    """The package's sources in a scratch directory, so the build writes nothing into the checkout."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    target.mkdir()
    for name in ("pyproject.toml", "README.md"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, target / name)
    for package in ("agent", "operator"):
        shutil.copytree(ROOT / package, target / package, ignore=ignore)
    return target


@pytest.mark.slow
@pytest.mark.timeout(900)  # builds the package in an isolated build environment
def test_install_script_installs_a_working_agent(tmp_path: Path, imds: ImdsEmulator) -> None:
    script = ROOT / "agent" / "spot_agent" / "install.sh"
    source = _source_copy(tmp_path / "src")
    prefix, etc, units = tmp_path / "opt", tmp_path / "etc", tmp_path / "units"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "SPOT_AGENT_PREFIX": str(prefix),
        "SPOT_AGENT_ETC": str(etc),
        "SPOT_AGENT_UNIT_DIR": str(units),
        "SPOT_AGENT_VENV_ARGS": "--system-site-packages",  # pydantic from this environment: no download
        # With build isolation: the new venv's bundled setuptools may be older than pyproject asks for.
        "SPOT_AGENT_PIP_ARGS": "",
        "SPOT_AGENT_TOKEN": "token-from-user-data",
    }
    args = [
        "sh", str(script), "--source", str(source), "--python", sys.executable, "--no-start",
        "--operator-url", "https://ops.example.com:8443", "--namespace", "prod", "--name", "web",
        "--pre-stop", 'systemctl stop "my app"',
    ]  # fmt: skip
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "token-from-user-data" not in result.stdout + result.stderr

    token = etc / "token"
    assert token.read_text() == "token-from-user-data\n"
    assert token.stat().st_mode & 0o777 == 0o600
    config = tomllib.loads((etc / "config.toml").read_text())
    assert config["operator_url"] == "https://ops.example.com:8443"
    assert config["token_file"] == str(token)
    assert config["hooks"]["pre-stop"]["command"] == 'systemctl stop "my app"'
    unit = (units / "spot-agent.service").read_text()
    assert f"ExecStart={prefix}/bin/spot-agent run --config {etc}/config.toml" in unit
    assert "StateDirectory=spot-agent" in unit

    installed = prefix / "bin" / "spot-agent"
    clean = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "SPOT_AGENT_CONFIG": str(etc / "config.toml")}
    helped = subprocess.run([str(installed), "--help"], env=clean, capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0
    assert "check" in helped.stdout
    dry = subprocess.run(
        [str(installed), "run", "--dry-run", "--once"],
        env={**clean, "SPOT_AGENT_IMDS_ENDPOINT": imds.url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dry.returncode == 0, dry.stderr
    assert json_lines(dry.stdout)[-1]["wouldPost"] == "/v1/namespaces/prod/agents/web/heartbeat"


def test_install_script_refuses_incomplete_arguments(tmp_path: Path) -> None:
    script = ROOT / "agent" / "spot_agent" / "install.sh"
    result = subprocess.run(
        ["sh", str(script), "--namespace", "prod", "--name", "web"],
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--operator-url is required" in result.stderr
    helped = subprocess.run(["sh", str(script), "--help"], capture_output=True, text=True, timeout=30)
    assert helped.returncode == 0
    assert "--pre-stop CMD" in helped.stdout
