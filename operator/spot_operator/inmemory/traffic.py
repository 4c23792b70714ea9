"""Traffic that lives in a dict: which instance each agent's Elastic IP / target groups point at."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from spot_operator.ports import TrafficMove, TrafficTarget


class InMemoryTraffic:
    """Implements :class:`spot_operator.ports.Traffic`; ``next_error`` fails the next move."""

    def __init__(self) -> None:
        self.pointing: dict[str, str | None] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._errors: list[Exception] = []
        self.moves: dict[str, int] = defaultdict(int)

    def next_error(self, error: Exception) -> None:
        self._errors.append(error)

    @staticmethod
    def _key(target: TrafficTarget) -> str:
        return (
            target.elastic_ip_allocation_id
            or ",".join(target.target_group_arns)
            or target.route53_record
            or ""
        )

    async def move(self, target: TrafficTarget, to_instance: str, from_instance: str | None) -> TrafficMove:
        self.calls.append(("move", {"target": self._key(target), "to": to_instance, "from": from_instance}))
        if self._errors:
            raise self._errors.pop(0)
        self.pointing[self._key(target)] = to_instance
        self.moves[self._key(target)] += 1
        return TrafficMove(
            elastic_ip_seconds=0.0 if target.elastic_ip_allocation_id else None,
            target_groups_seconds=0.0 if target.target_group_arns else None,
            dns_seconds=0.0 if target.route53_record else None,
        )

    async def serving(self, region: str, allocation_ids: Sequence[str]) -> dict[str, str | None]:
        self.calls.append(("serving", {"region": region}))
        return {a: self.pointing.get(a) for a in allocation_ids}

    def serving_for(self, target: TrafficTarget) -> str | None:
        return self.pointing.get(self._key(target))
