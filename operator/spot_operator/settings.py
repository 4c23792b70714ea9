"""Operator configuration from the environment, validated at start-up with a clear error per bad value.

Every variable is ``SPOT_OPERATOR_<FIELD>`` (upper case) except ``DATABASE_URL`` and the standard AWS
ones (``AWS_REGION``, ``AWS_ENDPOINT_URL``...), which boto3 reads itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

PREFIX = "SPOT_OPERATOR_"


class SettingsError(ValueError):
    pass


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    namespaces: tuple[str, ...] = Field(
        default=(), description="Namespaces to watch, comma-separated; empty watches all (cluster-wide)."
    )
    database_url: str | None = Field(
        default=None, description="PostgreSQL DSN (DATABASE_URL). Unset: price history and savings are off."
    )
    peering: str = Field(
        default="spot-optimizer", description="Name of the leader-election Lease (in POD_NAMESPACE)."
    )
    standalone: bool = Field(default=False, description="Run without leader election (one replica only).")
    health_port: int = Field(
        default=8081, ge=1, le=65535, description="Liveness/readiness on /healthz, /readyz."
    )
    metrics_port: int = Field(default=9090, ge=1, le=65535, description="Prometheus /metrics.")
    agent_api_port: int = Field(default=8443, ge=1, le=65535, description="The on-instance agents' API.")
    agent_api_host: str = Field(default="0.0.0.0", description="Address the agent API binds.")
    sqs_queue_url: str | None = Field(
        default=None,
        description="EventBridge->SQS queue with interruption events; unset: agent reports only.",
    )
    aws_endpoint_url: str | None = Field(
        default=None, description="Override the AWS endpoint (AWS_ENDPOINT_URL), e.g. a moto server."
    )
    observe_interval_seconds: float = Field(default=30.0, ge=1, le=3600, description="EC2 observe cycle.")
    price_interval_seconds: float = Field(default=300.0, ge=10, le=86400, description="Spot price refresh.")
    decision_interval_seconds: float = Field(
        default=300.0, ge=10, le=86400, description="auto-switch decisions."
    )
    reconcile_interval_seconds: float = Field(default=60.0, ge=1, le=3600, description="Timer per object.")
    clean_interval_seconds: float = Field(default=900.0, ge=30, le=86400, description="Price cleaning job.")
    raw_retention_days: int = Field(default=30, ge=1, le=3650, description="Raw price rows kept.")
    clean_retention_days: int = Field(default=400, ge=1, le=3650, description="Clean price rows kept.")
    model_dir: str | None = Field(default=None, description="Where uploaded xgboost models are kept on disk.")
    log_format: Literal["json", "text"] = Field(
        default="json", description="Structured JSON or plain text logs."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("namespaces", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(n.strip() for n in value.split(",") if n.strip())
        return value

    @field_validator("database_url")
    @classmethod
    def _dsn(cls, value: str | None) -> str | None:
        if value and not value.startswith(("postgresql", "sqlite")):
            raise ValueError("must start with postgresql:// (or sqlite:// for the sandbox)")
        return value


def from_env(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    raw: dict[str, object] = {}
    for name in Settings.model_fields:
        key = PREFIX + name.upper()
        if key in env:
            raw[name] = env[key]
    if "database_url" not in raw and env.get("DATABASE_URL"):
        raw["database_url"] = env["DATABASE_URL"]
    if "aws_endpoint_url" not in raw and env.get("AWS_ENDPOINT_URL"):
        raw["aws_endpoint_url"] = env["AWS_ENDPOINT_URL"]
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            var = "DATABASE_URL" if field == "database_url" else PREFIX + field.upper()
            problems.append(f"{var}={raw.get(field, '')!r}: {err['msg']}")
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(problems)) from None
