from __future__ import annotations

from pathlib import Path

import pytest

from spot_agent.config import ConfigError, load_config
from spot_agent.protocol import NoticeKind

GOOD = """
operator_url = "https://ops.example.com:8443/"
namespace = "prod"
name = "build-server"
poll_interval_seconds = 2

[hooks.pre-stop]
command = ["/usr/local/bin/drain", "--graceful"]
timeout_seconds = 60
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_defaults_without_a_file_or_environment(tmp_path: Path) -> None:
    config = load_config(env={"SPOT_AGENT_CONFIG": str(write(tmp_path, ""))})
    assert config.poll_interval_seconds == 5
    assert config.heartbeat_interval_seconds == 30
    assert config.imds_endpoint == "http://169.254.169.254"
    assert config.hooks == {}


def test_missing_default_file_is_fine_but_an_explicit_one_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("spot_agent.config.DEFAULT_PATH", tmp_path / "absent.toml")
    assert load_config(env={}).namespace is None
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.toml", env={})


def test_file_values(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), env={})
    assert config.operator_url == "https://ops.example.com:8443"  # trailing slash dropped
    assert config.require_operator() == ("https://ops.example.com:8443", "prod", "build-server")
    hook = config.hooks["pre-stop"]
    assert hook.command == ("/usr/local/bin/drain", "--graceful")
    assert hook.timeout_seconds == 60
    assert hook.on == (NoticeKind.INTERRUPTION,)


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    env = {
        "SPOT_AGENT_POLL_INTERVAL_SECONDS": "1",
        "SPOT_AGENT_NAME": "other",
        "SPOT_AGENT_PRE_STOP_COMMAND": "systemctl stop 'my app'",
        "SPOT_AGENT_HEALTH_COMMAND": "/bin/true",
    }
    config = load_config(write(tmp_path, GOOD), env=env)
    assert config.poll_interval_seconds == 1
    assert config.name == "other"
    assert config.hooks["pre-stop"].command == ("systemctl", "stop", "my app")
    assert config.hooks["pre-stop"].timeout_seconds == 60  # the file's, merged
    assert config.health.command == ("/bin/true",)


def test_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, GOOD), env={"SPOT_AGENT_POLL_INTERVAL_SECONDS": "0.5"})
    message = str(info.value)
    assert "SPOT_AGENT_POLL_INTERVAL_SECONDS (environment) = '0.5'" in message
    assert "greater than or equal to 1" in message


def test_bad_file_values_are_all_named(tmp_path: Path) -> None:
    path = write(tmp_path, 'operator_url = "ftp://x"\nnamespace = "Prod"\nheartbeat_interval_seconds = -1\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    message = str(info.value)
    assert f"operator_url in {path}" in message
    assert "http:// or https://" in message
    assert f"namespace in {path}" in message
    assert f"heartbeat_interval_seconds in {path}" in message


def test_unknown_keys_and_variables(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"poll_intervall_seconds in .*: unknown setting"):
        load_config(write(tmp_path, "poll_intervall_seconds = 3\n"), env={})
    with pytest.raises(ConfigError, match="SPOT_AGENT_POLL_INTERVALL"):
        load_config(write(tmp_path, ""), env={"SPOT_AGENT_POLL_INTERVALL": "3"})


def test_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "namespace = \n"), env={})


def test_bad_hook(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"hooks\.pre-stop\.command"):
        load_config(write(tmp_path, "[hooks.pre-stop]\ncommand = []\n"), env={})
    with pytest.raises(ConfigError, match="hook name 'Pre_Stop'"):
        load_config(write(tmp_path, '[hooks.Pre_Stop]\ncommand = ["x"]\n'), env={})
    with pytest.raises(ConfigError, match=r"hooks\.pre-stop\.on"):
        load_config(write(tmp_path, '[hooks.pre-stop]\ncommand = ["x"]\non = ["earthquake"]\n'), env={})


def test_missing_operator_settings(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, 'namespace = "prod"\n'), env={})
    with pytest.raises(ConfigError) as info:
        config.require_operator()
    assert "operator_url (SPOT_AGENT_OPERATOR_URL)" in str(info.value)
    assert "name (SPOT_AGENT_NAME)" in str(info.value)
    assert "namespace" not in str(info.value).split("without:")[1]


def test_token_from_environment_file_missing_or_empty(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    config = load_config(write(tmp_path, f'token_file = "{token_file}"\n'), env={})
    with pytest.raises(ConfigError, match=f"write the token to {token_file}"):
        config.read_token()
    token_file.write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        config.read_token()
    token_file.write_text("file-token\n")
    assert config.read_token() == "file-token"
    token_file.write_text("rotated-token\n")  # read afresh each time
    assert config.read_token() == "rotated-token"
    from_env = load_config(
        write(tmp_path, f'token_file = "{token_file}"\n'), env={"SPOT_AGENT_TOKEN": "env-token"}
    )
    assert from_env.read_token() == "env-token"


def test_token_is_never_shown(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""), env={"SPOT_AGENT_TOKEN": "s3cr3t-value"})
    assert "s3cr3t-value" not in repr(config)
    assert "s3cr3t-value" not in str(config.model_dump())
