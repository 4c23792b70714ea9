from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from spot_agent.protocol import (
    HeartbeatReport,
    HookReport,
    InstanceAction,
    NoticeKind,
    NoticeReport,
    report_path,
)

T = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def heartbeat(**over: object) -> dict[str, object]:
    body: dict[str, object] = {
        "instanceId": "i-0123456789abcdef0",
        "agentVersion": "0.1.0",
        "health": "ok",
        "sentAt": "2024-05-01T12:00:00Z",
        "idempotencyKey": "k" * 32,
    }
    body.update(over)
    return body


def test_camel_case_on_the_wire() -> None:
    report = HeartbeatReport.model_validate(heartbeat(syncProgress=40))
    wire = json.loads(report.to_json())
    assert wire["instanceId"] == "i-0123456789abcdef0"
    assert wire["syncProgress"] == 40
    assert "instance_id" not in wire


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"instanceId": "i-xyz"}, "instanceId"),
        ({"health": "sick"}, "health"),
        ({"syncProgress": 101}, "syncProgress"),
        ({"sentAt": "2024-05-01T12:00:00"}, "sentAt"),  # no offset
        ({"idempotencyKey": "short"}, "idempotencyKey"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_heartbeat_rejects(over: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        HeartbeatReport.model_validate(heartbeat(**over))
    assert field in {str(e["loc"][0]) for e in info.value.errors()}


def test_action_only_for_interruptions() -> None:
    base = {
        "instanceId": "i-0123456789abcdef0",
        "noticeTime": "2024-05-01T12:00:00Z",
        "idempotencyKey": "k" * 16,
    }
    with pytest.raises(ValidationError, match="action is required"):
        NoticeReport.model_validate({**base, "kind": "interruption"})
    with pytest.raises(ValidationError, match="only allowed for an interruption"):
        NoticeReport.model_validate({**base, "kind": "rebalance", "action": "stop"})
    ok = NoticeReport.model_validate({**base, "kind": "interruption", "action": "hibernate"})
    assert ok.action is InstanceAction.HIBERNATE
    assert ok.kind is NoticeKind.INTERRUPTION


def test_no_infinite_durations() -> None:
    body = {
        "instanceId": "i-0123456789abcdef0",
        "hook": "pre-stop",
        "startedAt": "2024-05-01T12:00:00Z",
        "durationSeconds": float("inf"),
        "idempotencyKey": "k" * 16,
    }
    with pytest.raises(ValidationError, match="durationSeconds"):
        HookReport.model_validate(body)


def test_report_paths() -> None:
    report = HeartbeatReport.model_validate(heartbeat())
    assert report_path("prod", "db-1", report) == "/v1/namespaces/prod/agents/db-1/heartbeat"
    notice = NoticeReport(
        instance_id="i-0123456789abcdef0", kind=NoticeKind.REBALANCE, notice_time=T, idempotency_key="k" * 16
    )
    assert report_path("prod", "db-1", notice).endswith("/notices")
    hook = HookReport(
        instance_id="i-0123456789abcdef0",
        hook="pre-stop",
        started_at=T,
        duration_seconds=1.0,
        idempotency_key="k" * 16,
        exit_code=0,
    )
    assert report_path("prod", "db-1", hook).endswith("/hooks")
    assert hook.ok
