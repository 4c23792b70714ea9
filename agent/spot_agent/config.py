"""The agent's configuration: a TOML file (default /etc/spot-agent/config.toml) overlaid by SPOT_AGENT_*
environment variables, validated with a clear error per bad value.

Example file::

    operator_url = "https://spot-optimizer.example.com:8443"
    namespace = "default"
    name = "build-server"              # the SpotAgent this instance belongs to
    token_file = "/etc/spot-agent/token"

    [hooks.pre-stop]
    command = ["/usr/local/bin/drain", "--graceful"]
    timeout_seconds = 90

Every top-level key has an environment variable ``SPOT_AGENT_<KEY>`` (upper case) that wins over the
file; the pre-stop hook is also ``SPOT_AGENT_PRE_STOP_COMMAND`` / ``SPOT_AGENT_PRE_STOP_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import os
import re
import shlex
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from spot_agent.protocol import (
    HOOK_NAME_PATTERN,
    NAME_MAX_LENGTH,
    NAME_PATTERN,
    NAMESPACE_PATTERN,
    NoticeKind,
)

PREFIX = "SPOT_AGENT_"
DEFAULT_PATH = Path("/etc/spot-agent/config.toml")
CONFIG_ENV = PREFIX + "CONFIG"
PRE_STOP = "pre-stop"
# Environment variables that set a nested value: env name -> (table, key, field).
NESTED_ENV = {
    PREFIX + "PRE_STOP_COMMAND": ("hooks", PRE_STOP, "command"),
    PREFIX + "PRE_STOP_TIMEOUT_SECONDS": ("hooks", PRE_STOP, "timeout_seconds"),
    PREFIX + "HEALTH_COMMAND": ("health", None, "command"),
    PREFIX + "HEALTH_TIMEOUT_SECONDS": ("health", None, "timeout_seconds"),
    PREFIX + "SYNC_PROGRESS_FILE": ("health", None, "sync_progress_file"),
}


class ConfigError(ValueError):
    """The configuration is missing or invalid; the message names every bad setting and where it came from."""


def _split_command(value: object) -> object:
    if isinstance(value, str):
        return shlex.split(value)
    return value


class HookConfig(BaseModel):
    """A user command run when a notice of one of the listed kinds arrives (default: the interruption)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: tuple[str, ...] = Field(min_length=1, description="argv, or a string split like a shell would.")
    timeout_seconds: float = Field(default=90.0, gt=0, le=3600)
    on: tuple[NoticeKind, ...] = Field(default=(NoticeKind.INTERRUPTION,), min_length=1)

    @field_validator("command", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return _split_command(value)


class HealthConfig(BaseModel):
    """How the agent judges the workload: an optional check command and a sync-progress file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: tuple[str, ...] | None = Field(
        default=None, description="Exit 0: ok; 1: degraded; anything else or a timeout: failing."
    )
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    sync_progress_file: Path | None = Field(
        default=None, description="A file holding an integer 0..100 (a replica's data sync progress)."
    )

    @field_validator("command", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return _split_command(value)


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    operator_url: str | None = Field(
        default=None, description="The operator's agent API, http(s)://host:port."
    )
    namespace: str | None = Field(default=None, pattern=NAMESPACE_PATTERN, max_length=63)
    name: str | None = Field(default=None, pattern=NAME_PATTERN, max_length=NAME_MAX_LENGTH)
    token: SecretStr | None = Field(default=None, description="The bearer token; prefer token_file.")
    token_file: Path = Path("/etc/spot-agent/token")
    ca_file: Path | None = Field(default=None, description="CA bundle for an https operator_url.")
    imds_endpoint: str = "http://169.254.169.254"
    imds_token_ttl_seconds: int = Field(default=21600, ge=1, le=21600)
    imds_timeout_seconds: float = Field(default=2.0, gt=0, le=30)
    poll_interval_seconds: float = Field(default=5.0, ge=1, le=300)
    heartbeat_interval_seconds: float = Field(default=30.0, ge=1, le=3600)
    request_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    retry_initial_seconds: float = Field(default=0.5, gt=0, le=60)
    retry_max_seconds: float = Field(default=30.0, ge=0.1, le=600)
    spool_dir: Path = Path("/var/lib/spot-agent/spool")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    hooks: dict[str, HookConfig] = Field(default_factory=dict)
    health: HealthConfig = Field(default_factory=HealthConfig)

    @field_validator("operator_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value.rstrip("/")

    @field_validator("imds_endpoint")
    @classmethod
    def _imds(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError("must be an http:// URL (IMDS does not speak TLS)")
        return value.rstrip("/")

    @field_validator("hooks")
    @classmethod
    def _hook_names(cls, value: dict[str, HookConfig]) -> dict[str, HookConfig]:
        for name in value:
            if not re.match(HOOK_NAME_PATTERN, name):
                raise ValueError(f"hook name {name!r} must be lower-case letters, digits and '-'")
        return value

    def require_operator(self) -> tuple[str, str, str]:
        """Reporting needs to know where and as whom: (operator_url, namespace, name), or an error naming
        what is missing."""
        if self.operator_url is None or self.namespace is None or self.name is None:
            missing = [k for k in ("operator_url", "namespace", "name") if getattr(self, k) is None]
            names = ", ".join(f"{k} ({PREFIX}{k.upper()})" for k in missing)
            raise ConfigError(f"spot-agent cannot report without: {names}")
        return self.operator_url, self.namespace, self.name

    def read_token(self) -> str:
        """The bearer token, read afresh each time so a rotated token file is picked up."""
        if self.token is not None:
            value = self.token.get_secret_value().strip()
            if value:
                return value
        try:
            value = self.token_file.read_text().strip()
        except FileNotFoundError:
            raise ConfigError(
                f"no agent token: set {PREFIX}TOKEN or write the token to {self.token_file}"
            ) from None
        except OSError as exc:
            raise ConfigError(f"cannot read the agent token from {self.token_file}: {exc.strerror}") from None
        if not value:
            raise ConfigError(f"the agent token file {self.token_file} is empty")
        return value


def _from_env(env: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The settings the environment gives, and for each the variable it came from."""
    raw: dict[str, Any] = {}
    origin: dict[str, str] = {}
    top = {
        PREFIX + name.upper(): name for name in AgentConfig.model_fields if name not in ("hooks", "health")
    }
    unknown = []
    for var, value in env.items():
        if not var.startswith(PREFIX) or var == CONFIG_ENV:
            continue
        if var in top:
            raw[top[var]] = value
            origin[top[var]] = var
        elif var in NESTED_ENV:
            table, key, field = NESTED_ENV[var]
            section = raw.setdefault(table, {})
            if key is not None:
                section = section.setdefault(key, {})
            section[field] = value
            origin[".".join(p for p in (table, key, field) if p)] = var
        else:
            unknown.append(var)
    if unknown:
        raise ConfigError(f"unknown environment variable(s): {', '.join(sorted(unknown))}")
    return raw, origin


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> AgentConfig:
    """Read the file (``path``, else $SPOT_AGENT_CONFIG, else the default if it exists) and the environment.

    An explicitly named file must exist; the default one may be absent (environment only).
    """
    env = os.environ if env is None else env
    explicit = path is not None or CONFIG_ENV in env
    file = path or Path(env.get(CONFIG_ENV, str(DEFAULT_PATH)))
    data: dict[str, Any] = {}
    try:
        with file.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"config file {file} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {file} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {file}: {exc.strerror}") from None
    from_env, origin = _from_env(env)
    merged = _merge(data, from_env)
    try:
        return AgentConfig.model_validate(merged)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            source = next(
                (var for key, var in origin.items() if loc == key or loc.startswith(key + ".")), None
            )
            where = f"{source} (environment)" if source else f"{loc} in {file}"
            value = err.get("input")
            shown = "<hidden>" if loc.startswith("token") else repr(value)
            if err["type"] == "extra_forbidden":
                problems.append(f"{where}: unknown setting")
            else:
                problems.append(f"{where} = {shown}: {err['msg']}")
        raise ConfigError("invalid spot-agent configuration:\n  " + "\n  ".join(problems)) from None
