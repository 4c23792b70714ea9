"""Leader election with a coordination.k8s.io Lease: one replica acts, the others wait.

The holder renews the lease every ``renew_seconds``; a candidate takes it over only when it has not
been renewed for ``lease_seconds``. Writes carry the resourceVersion they read, so two candidates
racing for an expired lease cannot both win (the API server answers the loser 409 Conflict). A holder
that cannot renew within its lease steps down: ``lost`` is set and the process exits, so a stale
leader never keeps acting (the pod restarts as a candidate).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from spot_operator.adapters.kube import Conflict, KubeClient, resource_path
from spot_operator.errors import CloudError, NotFound

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: object) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@dataclass
class LeaseElector:
    client: KubeClient
    namespace: str
    name: str = "spot-optimizer"
    identity: str = field(default_factory=socket.gethostname)
    lease_seconds: float = 15.0
    renew_seconds: float = 5.0
    now: Callable[[], datetime] = _now

    def __post_init__(self) -> None:
        self.active = asyncio.Event()
        self.lost = asyncio.Event()
        self._path = resource_path("coordination.k8s.io", "v1", "leases", self.namespace)

    def _spec(self, now: datetime, transitions: int, acquired: datetime | None) -> dict[str, Any]:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.lease_seconds),
            "acquireTime": _stamp(acquired or now),
            "renewTime": _stamp(now),
            "leaseTransitions": transitions,
        }

    async def try_acquire(self) -> bool:
        """One attempt: True when this replica holds the lease afterwards."""
        now = self.now()
        try:
            lease = await self.client.get(f"{self._path}/{self.name}")
        except NotFound:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(now, 0, None),
            }
            try:
                await self.client.create(self._path, body)
            except Conflict:
                return False
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        renewed = _parse(spec.get("renewTime"))
        duration = float(spec.get("leaseDurationSeconds") or self.lease_seconds)
        expired = renewed is None or now - renewed > timedelta(seconds=duration)
        mine = holder == self.identity
        if not mine and not expired and holder:
            return False
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if mine else 1)
        acquired = _parse(spec.get("acquireTime")) if mine else None
        lease["spec"] = self._spec(now, transitions, acquired)
        try:  # PUT with the resourceVersion we read: a racing candidate gets 409
            await self.client.replace(f"{self._path}/{self.name}", lease)
        except Conflict:
            return False
        return True

    async def run(self) -> None:
        """Campaign until leader, then renew; set ``lost`` and return if the lease slips away."""
        while not self.active.is_set():
            try:
                if await self.try_acquire():
                    log.info(
                        "became the leader (lease %s/%s as %s)", self.namespace, self.name, self.identity
                    )
                    self.active.set()
                    break
            except CloudError as exc:
                log.warning("leader election: %s", exc)
            await asyncio.sleep(self.renew_seconds)
        last_renewal = self.now()
        while True:
            await asyncio.sleep(self.renew_seconds)
            try:
                if await self.try_acquire():
                    last_renewal = self.now()
                    continue
                log.error("another replica took the lease: stepping down")
            except CloudError as exc:
                if (self.now() - last_renewal).total_seconds() < self.lease_seconds:
                    log.warning("lease renewal failed, retrying: %s", exc)
                    continue
                log.error("could not renew the lease for %.0f s: stepping down", self.lease_seconds)
            self.active.clear()
            self.lost.set()
            return

    async def release(self) -> None:
        """On a clean shutdown, hand the lease over at once instead of after it expires."""
        if not self.active.is_set():
            return
        try:
            lease = await self.client.get(f"{self._path}/{self.name}")
            if (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                lease["spec"]["renewTime"] = _stamp(self.now() - timedelta(seconds=self.lease_seconds * 2))
                lease["spec"]["holderIdentity"] = ""
                await self.client.replace(f"{self._path}/{self.name}", lease)
        except CloudError as exc:
            log.warning("could not release the lease: %s", exc)
        self.active.clear()
