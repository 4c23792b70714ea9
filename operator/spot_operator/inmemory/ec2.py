"""An EC2 that lives in a dict: capacity per pool, injected errors, client tokens, recorded calls."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from spot_operator.errors import CloudError, InsufficientCapacity, NotFound
from spot_operator.inmemory.clock import Clock
from spot_operator.planning.model import Instance, InstanceState, Pool, Role
from spot_operator.ports import LaunchOutcome, LaunchRequest, ObservedInstance


@dataclass
class _Record:
    owner: str
    agent: str
    region: str
    instance: Instance
    running_at: datetime
    tags: dict[str, str] = field(default_factory=dict)


class InMemoryEc2:
    """Implements :class:`spot_operator.ports.Ec2`.

    ``capacity[pool]`` is how many more instances the pool can launch (absent: ``default_capacity``);
    ``next_error(op, exc)`` makes the next call of ``op`` raise; ``calls`` records (op, args).
    Instances are ``pending`` for ``boot_seconds`` after launch, then ``running``.
    """

    def __init__(self, clock: Clock, boot_seconds: float = 0.0, default_capacity: int = 1_000_000) -> None:
        self.clock = clock
        self.boot_seconds = boot_seconds
        self.default_capacity = default_capacity
        self.capacity: dict[Pool, int] = {}
        self.records: dict[str, _Record] = {}
        self.tokens: dict[str, str] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._errors: dict[str, list[Exception]] = defaultdict(list)
        self._counter = 0
        self.volumes: dict[str, str | None] = {}

    # -- test controls -------------------------------------------------------------------------
    def next_error(self, operation: str, error: Exception) -> None:
        self._errors[operation].append(error)

    def set_capacity(self, pool: Pool, launches: int) -> None:
        self.capacity[pool] = launches

    def reclaim(self, instance_id: str) -> None:
        """What AWS does at the end of a spot interruption notice."""
        rec = self.records[instance_id]
        rec.instance = replace(rec.instance, state=InstanceState.TERMINATED)

    def calls_of(self, operation: str) -> list[dict[str, Any]]:
        return [args for op, args in self.calls if op == operation]

    def reset_calls(self) -> None:
        self.calls.clear()

    def live(self, owner: str | None = None) -> list[Instance]:
        return [
            self._current(r)
            for r in self.records.values()
            if (owner is None or r.owner == owner) and self._current(r).live
        ]

    # -- the port ------------------------------------------------------------------------------
    def _raise_injected(self, operation: str) -> None:
        if self._errors[operation]:
            raise self._errors[operation].pop(0)

    def _current(self, rec: _Record) -> Instance:
        inst = rec.instance
        if inst.state is InstanceState.PENDING and self.clock.now() >= rec.running_at:
            inst = replace(inst, state=InstanceState.RUNNING)
            rec.instance = inst
        elif inst.state is InstanceState.SHUTTING_DOWN:
            inst = replace(inst, state=InstanceState.TERMINATED)
            rec.instance = inst
        return inst

    async def launch(self, request: LaunchRequest) -> LaunchOutcome:
        self.calls.append(
            (
                "launch",
                {
                    "key": request.key,
                    "token": request.client_token,
                    "candidates": request.candidates,
                    "owner": request.owner,
                },
            )
        )
        existing = self.tokens.get(request.client_token)
        if existing is not None:
            return LaunchOutcome(self._current(self.records[existing]))
        self._raise_injected("launch")
        refused = []
        for pool in request.candidates:
            left = self.capacity.get(pool, self.default_capacity)
            if left <= 0:
                refused.append(pool)
                continue
            self.capacity[pool] = left - 1
            self._counter += 1
            instance_id = f"i-{self._counter:017x}"
            now = self.clock.now()
            inst = Instance(
                instance_id=instance_id,
                pool=pool,
                role=request.role,
                state=InstanceState.PENDING if self.boot_seconds > 0 else InstanceState.RUNNING,
                launched_at=now,
                launch_key=request.key,
                purpose=request.purpose,
                epoch=request.epoch,
            )
            self.records[instance_id] = _Record(
                request.owner,
                request.agent,
                request.launch.region,
                inst,
                now + timedelta(seconds=self.boot_seconds),
            )
            self.tokens[request.client_token] = instance_id
            return LaunchOutcome(inst, tuple(refused))
        raise InsufficientCapacity(
            f"no capacity in {', '.join(map(str, refused))}",
            refused,
            "InsufficientInstanceCapacity",
            "RunInstances",
        )

    async def describe_owned(self, region: str) -> list[ObservedInstance]:
        self.calls.append(("describe_owned", {"region": region}))
        self._raise_injected("describe_owned")
        return [
            ObservedInstance(r.owner, r.agent, r.region, self._current(r))
            for r in self.records.values()
            if r.region == region
        ]

    def _get(self, instance_id: str) -> _Record:
        rec = self.records.get(instance_id)
        if rec is None:
            raise NotFound(f"instance {instance_id} does not exist", "InvalidInstanceID.NotFound")
        return rec

    async def set_role(self, region: str, instance_id: str, role: Role, epoch: int = 0) -> None:
        self.calls.append(("set_role", {"instance_id": instance_id, "role": role, "epoch": epoch}))
        self._raise_injected("set_role")
        rec = self._get(instance_id)
        rec.instance = replace(self._current(rec), role=role, epoch=epoch or rec.instance.epoch)

    async def terminate(self, region: str, instance_ids: Sequence[str]) -> None:
        self.calls.append(("terminate", {"instance_ids": tuple(instance_ids)}))
        self._raise_injected("terminate")
        for instance_id in instance_ids:
            rec = self._get(instance_id)
            if self._current(rec).live:
                rec.instance = replace(rec.instance, state=InstanceState.SHUTTING_DOWN)

    async def create_image(self, region: str, instance_id: str, name: str, client_token: str) -> str:
        self.calls.append(("create_image", {"instance_id": instance_id, "token": client_token}))
        self._raise_injected("create_image")
        self._get(instance_id)
        return f"ami-{abs(hash(client_token)) % 16**17:017x}"

    async def move_volumes(
        self, region: str, volumes: Sequence[tuple[str, str]], from_instance: str | None, to_instance: str
    ) -> None:
        self.calls.append(("move_volumes", {"from": from_instance, "to": to_instance}))
        self._raise_injected("move_volumes")
        if not self._current(self._get(to_instance)).live:
            raise CloudError(f"{to_instance} is not running", "IncorrectState")
        for volume_id, _device in volumes:
            self.volumes[volume_id] = to_instance
