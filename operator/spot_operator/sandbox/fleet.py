"""The spot-agents of a sandbox (or an integration test): one per instance the operator launched.

No instance runs a real spot-agent there, so a :class:`Fleet` plays them all: it heartbeats every
``interval`` seconds for each live instance, and reports notices when told to, over the operator's agent
API with the bearer token from the agent's Secret, in the agent's own wire format
(:mod:`spot_agent.protocol`). What the operator sees is what a real fleet would send.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import aiohttp

from spot_agent.protocol import (
    Health,
    HeartbeatReport,
    InstanceAction,
    NoticeKind,
    NoticeReport,
    Report,
    report_path,
)
from spot_operator.handlers.common import token_secret_name
from spot_operator.runtime.operator import Operator

AGENT_VERSION = "sandbox"
INTERRUPTION_WARNING = timedelta(minutes=2)  # what AWS gives between the notice and the interruption


class KubeEndpoint(Protocol):
    """Where the Kubernetes API answers (the emulation: no credentials)."""

    @property
    def url(self) -> str: ...


@dataclass(frozen=True)
class Delivery:
    """The agent API's answer to one report."""

    status: int
    body: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class Fleet:
    """The spot-agents on the operator's instances: heartbeats every ``interval``, notices on demand."""

    cluster: KubeEndpoint
    interval: float = 0.3
    silent: set[str] = field(default_factory=set)  # instance ids whose agent says nothing
    only: set[str] | None = None  # when set, only these instances' agents report
    sent: int = 0
    beats: int = 0
    rejected: list[str] = field(default_factory=list)
    _keys: itertools.count[int] = field(default_factory=itertools.count, repr=False)

    async def run(self, op_ref: list[Operator], api_url: list[str]) -> None:
        """Heartbeat until cancelled. ``op_ref`` and ``api_url`` may fill in later (the operator starting)."""
        async with aiohttp.ClientSession() as http:
            while True:
                await asyncio.sleep(self.interval)
                if op_ref and api_url:
                    await self._beat_all(http, op_ref[0], api_url[0])

    async def _beat_all(self, http: aiohttp.ClientSession, op: Operator, api_url: str) -> None:
        for state in list(op.agents.values()):
            namespace, name = state.ref.namespace, state.ref.name
            token = await self._token(http, namespace, name)
            if token is None:
                continue
            for inst in list(state.instances.values()):
                if not inst.live or inst.instance_id in self.silent:
                    continue
                if self.only is not None and inst.instance_id not in self.only:
                    continue
                self.beats += 1
                beat = HeartbeatReport(
                    instance_id=inst.instance_id,
                    agent_version=AGENT_VERSION,
                    health=Health.OK,
                    sync_progress=100,
                    sent_at=op.now(),
                    idempotency_key=f"beat-{self.beats:08d}",
                )
                answer = await self._post(http, api_url, namespace, name, token, beat)
                if answer.ok:
                    self.sent += 1
                else:
                    self.rejected.append(f"{answer.status} {answer.body}")

    async def notify(
        self,
        api_url: str,
        namespace: str,
        name: str,
        instance_id: str,
        kind: NoticeKind,
        now: datetime,
    ) -> Delivery:
        """Report what the instance's IMDS just showed: a rebalance recommendation or a 2-minute
        interruption notice (terminate)."""
        interruption = kind is NoticeKind.INTERRUPTION
        notice = NoticeReport(
            instance_id=instance_id,
            kind=kind,
            action=InstanceAction.TERMINATE if interruption else None,
            notice_time=now,
            deadline=now + INTERRUPTION_WARNING if interruption else None,
            idempotency_key=f"notice-{kind.value}-{instance_id}-{next(self._keys)}",
        )
        async with aiohttp.ClientSession() as http:
            token = await self._token(http, namespace, name)
            if token is None:
                return Delivery(0, f"no token Secret for {namespace}/{name}")
            return await self._post(http, api_url, namespace, name, token, notice)

    async def _post(
        self, http: aiohttp.ClientSession, api_url: str, namespace: str, name: str, token: str, report: Report
    ) -> Delivery:
        async with http.post(
            api_url + report_path(namespace, name, report),
            data=report.to_json(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        ) as resp:
            return Delivery(resp.status, await resp.text())

    async def _token(self, http: aiohttp.ClientSession, namespace: str, agent: str) -> str | None:
        url = f"{self.cluster.url}/api/v1/namespaces/{namespace}/secrets/{token_secret_name(agent)}"
        async with http.get(url) as resp:
            if resp.status != 200:
                self.rejected.append(f"secret: {resp.status} {await resp.text()}")
                return None
            body = await resp.json()
        return base64.b64decode(body["data"]["token"]).decode()
