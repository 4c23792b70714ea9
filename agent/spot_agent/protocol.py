"""The agent API's wire format, shared by the agent (client) and the operator (server).

camelCase on the wire, unknown fields refused, every field bounded. The operator builds its OpenAPI
document from these models, so what is validated is what is documented.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

API_PREFIX = "/v1"
INSTANCE_ID_PATTERN = r"^i-[0-9a-f]{8,17}$"
IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9_-]{8,128}$"
HOOK_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
# A Kubernetes namespace (DNS label) and object name (DNS subdomain).
NAMESPACE_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
NAME_MAX_LENGTH = 253

RAW_MAX_LENGTH = 16384
TAIL_MAX_LENGTH = 4096
DETAIL_MAX_LENGTH = 1024

InstanceId = Annotated[str, Field(pattern=INSTANCE_ID_PATTERN, description="The EC2 instance id.")]
IdempotencyKey = Annotated[
    str,
    Field(
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="The same report sent twice carries the same key; the operator acts on it once.",
    ),
]


class Wire(BaseModel):
    """Base of every wire model: camelCase, immutable, unknown fields refused, no NaN/Infinity."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        extra="forbid",
        allow_inf_nan=False,
    )

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()


class Health(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"
    FAILING = "failing"


class NoticeKind(StrEnum):
    INTERRUPTION = "interruption"  # the 2-minute spot notice: /spot/instance-action
    REBALANCE = "rebalance"  # /events/recommendations/rebalance
    MAINTENANCE = "maintenance"  # an active event in /events/maintenance/scheduled


class InstanceAction(StrEnum):
    TERMINATE = "terminate"
    STOP = "stop"
    HIBERNATE = "hibernate"


# ----------------------------------------------------------------------------------------- requests


class HeartbeatReport(Wire):
    """The agent is alive: sent every 30 s, and the operator counts an instance healthy from it."""

    instance_id: InstanceId
    agent_version: str = Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z.+_-]+$")
    health: Health = Field(description="ok, degraded (working, with a problem) or failing.")
    detail: str = Field(default="", max_length=DETAIL_MAX_LENGTH, description="Why, when not ok.")
    sync_progress: int = Field(
        default=100, ge=0, le=100, description="How far a replica's data sync has come, in percent."
    )
    sent_at: AwareDatetime = Field(description="When the agent made the report (RFC 3339, with offset).")
    idempotency_key: IdempotencyKey


class NoticeReport(Wire):
    """An IMDS notice, reported as soon as the agent sees it."""

    instance_id: InstanceId
    kind: NoticeKind
    action: InstanceAction | None = Field(
        default=None, description="terminate, stop or hibernate: set for an interruption, and only for one."
    )
    notice_time: AwareDatetime = Field(
        description="When AWS issued the notice (rebalance noticeTime; else when the agent first saw it)."
    )
    deadline: AwareDatetime | None = Field(
        default=None,
        description="When the instance will be acted on: the interruption time, or a maintenance NotBefore.",
    )
    event_id: str | None = Field(
        default=None, max_length=128, description="A maintenance event's EventId (instance-event-...)."
    )
    event_code: str | None = Field(
        default=None,
        max_length=64,
        description="A maintenance event's Code (system-reboot, instance-stop...).",
    )
    raw: str = Field(default="", max_length=RAW_MAX_LENGTH, description="The IMDS payload as received.")
    idempotency_key: IdempotencyKey

    @model_validator(mode="after")
    def _action_only_for_interruptions(self) -> NoticeReport:
        if self.kind is NoticeKind.INTERRUPTION and self.action is None:
            raise ValueError("action is required for an interruption (terminate, stop or hibernate)")
        if self.kind is not NoticeKind.INTERRUPTION and self.action is not None:
            raise ValueError(f"action is only allowed for an interruption, not for a {self.kind.value}")
        return self


class HookReport(Wire):
    """The result of one run of a user hook (the pre-stop drain command)."""

    instance_id: InstanceId
    hook: str = Field(pattern=HOOK_NAME_PATTERN, description="The hook's name, e.g. pre-stop.")
    trigger: IdempotencyKey | None = Field(
        default=None, description="The idempotency key of the notice that ran the hook."
    )
    exit_code: int | None = Field(
        default=None,
        ge=-255,
        le=255,
        description="The command's exit status (negative: killed by that signal); null when it never exited "
        "on its own (timed out) or could not start.",
    )
    timed_out: bool = False
    error: str | None = Field(
        default=None, max_length=DETAIL_MAX_LENGTH, description="Why it could not start."
    )
    started_at: AwareDatetime
    duration_seconds: float = Field(ge=0, le=86400)
    stdout_tail: str = Field(default="", max_length=TAIL_MAX_LENGTH, description="The last 4 KiB of stdout.")
    stderr_tail: str = Field(default="", max_length=TAIL_MAX_LENGTH, description="The last 4 KiB of stderr.")
    idempotency_key: IdempotencyKey

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


Report = HeartbeatReport | NoticeReport | HookReport

# Report type -> the last path segment of its endpoint.
ENDPOINTS: dict[type[Wire], str] = {
    HeartbeatReport: "heartbeat",
    NoticeReport: "notices",
    HookReport: "hooks",
}


def report_path(namespace: str, name: str, report: Report) -> str:
    """The endpoint a report is posted to: /v1/namespaces/<namespace>/agents/<name>/<kind>."""
    return f"{API_PREFIX}/namespaces/{namespace}/agents/{name}/{ENDPOINTS[type(report)]}"


# ---------------------------------------------------------------------------------------- responses


class HeartbeatAck(Wire):
    status: Literal["ok"] = "ok"
    server_time: AwareDatetime = Field(description="The operator's clock, to spot skew.")


class NoticeAck(Wire):
    status: Literal["accepted", "duplicate"] = Field(
        description="accepted: the operator acts on it; duplicate: it already had this notice."
    )
    idempotency_key: IdempotencyKey


class HookAck(Wire):
    status: Literal["accepted"] = "accepted"
    idempotency_key: IdempotencyKey


class FieldError(Wire):
    field: str = Field(description="The offending field, dotted camelCase path ('body' for the whole body).")
    message: str


class ErrorBody(Wire):
    """Every 4xx/5xx answer of the agent API."""

    error: str = Field(description="A stable machine-readable code, e.g. invalid_token, validation_failed.")
    message: str = Field(description="What is wrong, for a person.")
    errors: list[FieldError] = Field(default_factory=list, description="One entry per invalid field (422).")


class HealthBody(Wire):
    status: Literal["ok"] = "ok"
