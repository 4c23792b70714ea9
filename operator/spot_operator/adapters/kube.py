"""The Kubernetes API calls the operator makes besides kopf's own: children, statuses, events, secrets,
leases.

A small aiohttp client (the operator already runs aiohttp for the agent API) authenticated with the same
credentials kopf logged in with, so there is one source of truth for how we reach the cluster.
API errors become :mod:`spot_operator.errors` exceptions: 404 NotFound, 409 Conflict (as InvalidRequest
with code 'Conflict'), 401/403 Unauthorized, 429/5xx Transient.
"""

from __future__ import annotations

import base64
import contextlib
import json
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from spot_operator.api.common import API_VERSION, GROUP, VERSION
from spot_operator.errors import CloudError, InvalidRequest, NotFound, Transient, Unauthorized
from spot_operator.planning.model import ReplicaObject, SwitchObject
from spot_operator.ports import AgentRef

PLURALS = {"SpotAgent": "spotagents", "Replica": "replicas", "SwitchRequest": "switchrequests"}
MERGE = "application/merge-patch+json"


class Conflict(InvalidRequest):
    """409: the object exists already, or changed since it was read."""


@dataclass(frozen=True)
class Connection:
    server: str
    token: str | None = None
    ca_path: str | None = None
    ca_data: bytes | None = None
    insecure: bool = False
    certificate_path: str | None = None
    private_key_path: str | None = None

    @classmethod
    def from_kopf(cls, info: Any) -> Connection:
        """From a ``kopf.ConnectionInfo`` (whatever login handler produced it)."""
        ca_data = info.ca_data
        if isinstance(ca_data, str):
            ca_data = ca_data.encode()
        return cls(
            server=info.server.rstrip("/"),
            token=info.token,
            ca_path=info.ca_path,
            ca_data=ca_data,
            insecure=bool(info.insecure),
            certificate_path=info.certificate_path,
            private_key_path=info.private_key_path,
        )

    def ssl_context(self) -> ssl.SSLContext | bool:
        if not self.server.startswith("https"):
            return False
        if self.insecure:
            return False
        context = ssl.create_default_context(cafile=self.ca_path)
        if self.ca_data:
            data = self.ca_data
            with contextlib.suppress(ValueError):  # PEM as given, or base64 of it
                data = base64.b64decode(data, validate=True)
            context.load_verify_locations(cadata=data.decode())
        if self.certificate_path and self.private_key_path:
            context.load_cert_chain(self.certificate_path, self.private_key_path)
        return context


def resource_path(
    group: str, version: str, plural: str, namespace: str | None, name: str | None = None
) -> str:
    base = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    path = f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"
    return f"{path}/{name}" if name else path


def _error(status: int, body: str, what: str) -> CloudError:
    try:
        message = json.loads(body).get("message", body)
    except ValueError:
        message = body
    text = f"{what}: {status} {message}"
    if status == 404:
        return NotFound(text, "NotFound")
    if status == 409:
        return Conflict(text, "Conflict")
    if status in (401, 403):
        return Unauthorized(text, "Forbidden" if status == 403 else "Unauthorized")
    if status == 429 or status >= 500:
        return Transient(text, str(status))
    return InvalidRequest(text, str(status))


class KubeClient:
    def __init__(self, connection: Connection, timeout_seconds: float = 15.0) -> None:
        self.connection = connection
        headers = {"Accept": "application/json", "User-Agent": "spot-optimizer"}
        if connection.token:
            headers["Authorization"] = f"Bearer {connection.token}"
        self._session = aiohttp.ClientSession(
            base_url=connection.server,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout_seconds),
            connector=aiohttp.TCPConnector(ssl=connection.ssl_context(), limit=32),
        )

    async def close(self) -> None:
        await self._session.close()

    async def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> dict[str, Any]:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if body is not None else {}
        try:
            async with self._session.request(method, path, data=data, headers=headers) as resp:
                text = await resp.text()
                if resp.status >= 400:
                    raise _error(resp.status, text, f"{method} {path}")
                result: dict[str, Any] = json.loads(text) if text else {}
                return result
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Transient(f"{method} {path}: {exc}", type(exc).__name__) from exc

    async def get(self, path: str) -> dict[str, Any]:
        return await self.request("GET", path)

    async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.request("POST", path, body)

    async def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.request("PATCH", path, body, MERGE)

    async def replace(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.request("PUT", path, body)


def _owner(agent: AgentRef) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": API_VERSION,
            "kind": "SpotAgent",
            "name": agent.name,
            "uid": agent.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def _labels(agent: AgentRef) -> dict[str, str]:
    return {"spotoptimizer.io/agent": agent.name, "app.kubernetes.io/managed-by": "spot-optimizer"}


def _created_at(body: dict[str, Any]) -> datetime:
    stamp = body.get("metadata", {}).get("creationTimestamp")
    if not stamp:
        return datetime.now(UTC)
    return datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))


class KubeObjects:
    """Implements :class:`spot_operator.ports.Objects` over the Kubernetes API."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client

    async def create_replica(
        self, agent: AgentRef, name: str, reason: str, pool: str | None
    ) -> ReplicaObject:
        from spot_operator.conversions import replica_from_body

        spec: dict[str, Any] = {"agentRef": {"name": agent.name}, "reason": reason}
        if pool:
            spec["pool"] = pool
        body = {
            "apiVersion": API_VERSION,
            "kind": "Replica",
            "metadata": {
                "name": name,
                "namespace": agent.namespace,
                "labels": {**_labels(agent), "spotoptimizer.io/created-by": "operator"},
                "ownerReferences": _owner(agent),
            },
            "spec": spec,
        }
        path = resource_path(GROUP, VERSION, "replicas", agent.namespace)
        try:
            created = await self.client.create(path, body)
        except Conflict:
            created = await self.client.get(f"{path}/{name}")
        return replica_from_body(created)

    async def create_switch(
        self,
        agent: AgentRef,
        name: str,
        target: Any,
        reason: Any,
        priority: int | None,
        message: str,
    ) -> SwitchObject:
        from spot_operator.conversions import switch_from_body

        spec: dict[str, Any] = {
            "agentRef": {"name": agent.name},
            "target": target.to_wire(),
            "reason": reason.value,
        }
        if priority is not None:
            spec["priority"] = priority
        body = {
            "apiVersion": API_VERSION,
            "kind": "SwitchRequest",
            "metadata": {
                "name": name,
                "namespace": agent.namespace,
                "labels": {**_labels(agent), "spotoptimizer.io/created-by": "operator"},
                "annotations": {"spotoptimizer.io/message": message[:1024]},
                "ownerReferences": _owner(agent),
            },
            "spec": spec,
        }
        path = resource_path(GROUP, VERSION, "switchrequests", agent.namespace)
        try:
            created = await self.client.create(path, body)
        except Conflict:
            created = await self.client.get(f"{path}/{name}")
        return switch_from_body(created)

    async def patch_status(self, kind: str, namespace: str, name: str, status: dict[str, object]) -> None:
        path = resource_path(GROUP, VERSION, PLURALS[kind], namespace, name) + "/status"
        await self.client.merge_patch(path, {"status": status})

    async def event(
        self, kind: str, namespace: str, name: str, uid: str, reason: str, message: str, warning: bool
    ) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{name}.", "namespace": namespace},
            "involvedObject": {
                "apiVersion": API_VERSION,
                "kind": kind,
                "name": name,
                "namespace": namespace,
                **({"uid": uid} if uid else {}),
            },
            "reason": reason[:128],
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": "spot-optimizer"},
            "reportingComponent": "spot-optimizer",
            "reportingInstance": "spot-optimizer",
            "action": reason[:128],
            "firstTimestamp": now,
            "lastTimestamp": now,
            "eventTime": now,
            "count": 1,
        }
        await self.client.create(resource_path("", "v1", "events", namespace), body)

    # -- the agent token Secret ---------------------------------------------------------------
    async def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        try:
            body = await self.client.get(resource_path("", "v1", "secrets", namespace, name))
        except NotFound:
            return None
        data = body.get("data") or {}
        return {k: base64.b64decode(v).decode() for k, v in data.items()}

    async def create_secret(
        self, agent: AgentRef, name: str, data: dict[str, str], labels: dict[str, str] | None = None
    ) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": name,
                "namespace": agent.namespace,
                "labels": {**_labels(agent), **(labels or {})},
                "ownerReferences": _owner(agent),
            },
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        }
        await self.client.create(resource_path("", "v1", "secrets", agent.namespace), body)
