"""When the cluster or the database cannot be used: one line naming it, exit code 2, no traceback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from spot_operator.sandbox.kubeapi import write_kubeconfig

from .conftest import Invoke, flat


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def refused(tmp_path: Path) -> tuple[str, Path]:
    """A kubeconfig pointing at a port nothing listens on."""
    server = f"http://127.0.0.1:{_closed_port()}"
    return server, write_kubeconfig(tmp_path / "kubeconfig", server)


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["status", "-A", "-o", "json"],
        ["switch", "build-server", "--cheapest"],
        ["promote", "game-server", "--wait"],
    ],
)
def test_a_refused_connection_names_the_server(
    spotctl: Invoke, refused: tuple[str, Path], command: list[str]
) -> None:
    server, kubeconfig = refused
    result = spotctl([*command, "--kubeconfig", str(kubeconfig)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"error: cannot reach the cluster at {server}: connection refused\n"


def test_no_kubeconfig_is_one_line(spotctl: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    result = spotctl(["status"])
    assert result.exit_code == 2
    absent = tmp_path / "absent"
    why = f"no kubeconfig at {absent} and not running in a cluster"
    assert result.stderr == f"error: cannot use the cluster: {why}\n"


def test_an_unknown_context_is_one_line(spotctl: Invoke, refused: tuple[str, Path]) -> None:
    result = spotctl(["status", "--kubeconfig", str(refused[1]), "--context", "prod"])
    assert result.exit_code == 2
    assert result.stderr == "error: cannot use the cluster: kubeconfig has no context named 'prod'\n"


@pytest.mark.parametrize(
    "command", [["prices", "m5.large.us-east-1a"], ["savings"], ["savings", "--agent", "team/build"]]
)
def test_an_unreachable_database_is_one_line(spotctl: Invoke, command: list[str]) -> None:
    url = f"postgresql://spot:secret@127.0.0.1:{_closed_port()}/spot"
    result = spotctl([*command, "--database-url", url])
    assert result.exit_code == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(
        f"error: cannot reach the database at postgresql://spot:***@127.0.0.1:{url.split(':')[3]}"
    )
    assert "secret" not in result.stderr
    assert "Connection refused" in line


def test_no_database_url_is_one_line(spotctl: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    result = spotctl(["savings"])
    assert result.exit_code == 2
    assert result.stderr == "error: no database: pass --database-url or set DATABASE_URL\n"


def test_a_database_without_our_tables_says_so(spotctl: Invoke, tmp_path: Path) -> None:
    result = spotctl(
        ["prices", "m5.large.us-east-1a", "--database-url", f"sqlite:///{tmp_path / 'empty.db'}"]
    )
    assert result.exit_code == 2
    assert "has no spot-optimizer tables" in flat(result.stderr)


def test_a_malformed_pool_is_a_usage_error(spotctl: Invoke) -> None:
    result = spotctl(["prices", "us-east-1a", "--database-url", "sqlite://"])
    assert result.exit_code == 2
    assert "malformed pool 'us-east-1a'" in flat(result.output)


def test_a_malformed_kubeconfig_is_one_line(spotctl: Invoke, tmp_path: Path) -> None:
    broken = tmp_path / "kubeconfig"
    broken.write_text("clusters: [unclosed\n")
    result = spotctl(["status", "--kubeconfig", str(broken)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: cannot use the cluster: bad kubeconfig (")
    assert len(result.stderr.splitlines()) == 1


def test_brackets_in_a_message_are_printed_as_they_are(spotctl: Invoke, tmp_path: Path) -> None:
    absent = tmp_path / "[bold]x[/bold]"
    result = spotctl(["status", "--kubeconfig", str(absent)])
    assert result.exit_code == 2
    assert f"no kubeconfig at {absent} " in result.stderr
