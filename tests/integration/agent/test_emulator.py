"""The IMDS emulator follows the real service's (and amazon-ec2-metadata-mock's) token rules and formats."""

from __future__ import annotations

import http.client
import json

from tests.fakes.imds import ImdsEmulator


def request(
    imds: ImdsEmulator, method: str, path: str, headers: dict[str, str]
) -> tuple[int, str, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", imds.port, timeout=5)
    try:
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode(), dict(response.getheaders())
    finally:
        conn.close()


def token(imds: ImdsEmulator, ttl: str = "60") -> str:
    status, body, headers = request(
        imds, "PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": ttl}
    )
    assert status == 200
    assert headers["X-aws-ec2-metadata-token-ttl-seconds"] == ttl
    return body


def test_token_rules(imds: ImdsEmulator) -> None:
    assert request(imds, "PUT", "/latest/api/token", {})[0] == 400  # TTL required
    for bad in ("0", "21601", "soon"):
        assert (
            request(imds, "PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": bad})[0] == 400
        )
    forwarded = {"X-aws-ec2-metadata-token-ttl-seconds": "60", "X-Forwarded-For": "10.0.0.1"}
    assert request(imds, "PUT", "/latest/api/token", forwarded)[0] == 403
    assert request(imds, "GET", "/latest/meta-data/instance-id", {})[0] == 401  # IMDSv2 only
    assert (
        request(imds, "GET", "/latest/meta-data/instance-id", {"X-aws-ec2-metadata-token": "forged"})[0]
        == 401
    )
    good = token(imds)
    status, body, _ = request(
        imds, "GET", "/latest/meta-data/instance-id/", {"X-aws-ec2-metadata-token": good}
    )
    assert (status, body) == (200, "i-1234567890abcdef0")  # trailing slash tolerated, as AEMM does
    imds.advance(60)
    assert request(imds, "GET", "/latest/meta-data/instance-id", {"X-aws-ec2-metadata-token": good})[0] == 401


def test_formats(imds: ImdsEmulator) -> None:
    headers = {"X-aws-ec2-metadata-token": token(imds)}
    imds.schedule_interruption(action="stop")
    imds.schedule_rebalance()
    imds.schedule_maintenance(code="system-maintenance", event_id="instance-event-0123456789abcdef0")
    status, body, _ = request(imds, "GET", "/latest/meta-data/spot/instance-action", headers)
    action = json.loads(body)
    assert status == 200
    assert action["action"] == "stop"
    assert action["time"].endswith("Z")
    status, body, _ = request(imds, "GET", "/latest/meta-data/spot/termination-time", headers)
    assert body == action["time"]
    assert set(
        json.loads(request(imds, "GET", "/latest/meta-data/events/recommendations/rebalance", headers)[1])
    ) == {"noticeTime"}
    [event] = json.loads(request(imds, "GET", "/latest/meta-data/events/maintenance/scheduled", headers)[1])
    assert set(event) == {"Code", "Description", "State", "EventId", "NotBefore", "NotAfter"}
    assert event["NotBefore"].endswith(" GMT")
    status, _, _ = request(imds, "GET", "/latest/meta-data/no-such-thing", headers)
    assert status == 404


def test_restart_forgets_tokens(imds: ImdsEmulator) -> None:
    good = token(imds)
    imds.stop()
    imds.restart()
    assert request(imds, "GET", "/latest/meta-data/instance-id", {"X-aws-ec2-metadata-token": good})[0] == 401
