"""Look at the sandbox from outside: the custom resources through the Kubernetes API, the instances and the
Elastic IPs in moto, the latest prices in the store. One :class:`Snapshot` per look."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from spot_operator.adapters.kube import KubeClient, resource_path
from spot_operator.api.common import GROUP, VERSION
from spot_operator.sandbox import store
from spot_operator.sandbox.cloud import SandboxAws
from spot_operator.sandbox.snapshot import Snapshot, snapshot

PRICE_REFRESH_SECONDS = 2.0


@dataclass
class Observer:
    kube: KubeClient
    aws: SandboxAws
    engine: Engine
    namespace: str = "default"
    elastic_ips: Sequence[str] = ()
    target_groups: Sequence[str] = ()
    _prices: dict[str, float] = field(default_factory=dict)
    _prices_at: float = float("-inf")

    async def look(self) -> Snapshot:
        agents, replicas, switches = await asyncio.gather(
            self._list("spotagents"), self._list("replicas"), self._list("switchrequests")
        )
        instances, eips = await asyncio.gather(
            asyncio.to_thread(self.aws.instances),
            asyncio.to_thread(self.aws.elastic_ip_targets, self.elastic_ips),
        )
        groups = {
            arn: await asyncio.to_thread(self.aws.target_group_members, arn) for arn in self.target_groups
        }
        if time.monotonic() - self._prices_at > PRICE_REFRESH_SECONDS:
            self._prices = await asyncio.to_thread(store.latest_spot_prices, self.engine)
            self._prices_at = time.monotonic()
        return snapshot(agents, replicas, switches, instances, eips, groups, self._prices)

    async def _list(self, plural: str) -> list[dict[str, Any]]:
        body = await self.kube.get(resource_path(GROUP, VERSION, plural, self.namespace))
        return list(body.get("items") or [])
