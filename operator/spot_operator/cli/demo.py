"""`spotctl demo`: a scripted day of two workloads, planned and acted on by the real planner and
reconciler over in-memory EC2, printed as a timeline. No cluster, no AWS, no database.

It shows the flows end to end on a simulated clock: first launch, a standby in manual-replica mode,
a rebalance recommendation answered in auto-switch, interruption notices with and without a ready
replica, on-demand fallback, and people asking for switches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

import typer
from rich.console import Console
from rich.table import Table

from spot_operator.api import SpotAgentSpec, SwitchTarget, TargetKind
from spot_operator.cli.app import app
from spot_operator.planning import NoticeKind, Role
from spot_operator.simulation.world import World, with_prices

PRICES = {
    "m5.large.us-east-1a": 0.0391,
    "m5.large.us-east-1b": 0.0355,
    "m5a.large.us-east-1a": 0.0342,
    "m5a.large.us-east-1b": 0.0412,
    "c5.xlarge.us-east-1a": 0.0718,
    "c5.xlarge.us-east-1b": 0.0655,
    "c5a.xlarge.us-east-1a": 0.0601,
    "c5a.xlarge.us-east-1b": 0.0684,
}
ON_DEMAND = {"m5.large": 0.096, "m5a.large": 0.086, "c5.xlarge": 0.17, "c5a.xlarge": 0.154}

BUILD = {
    "region": "us-east-1",
    "launchTemplate": {"name": "build-server"},
    "instanceTypes": ["m5.large", "m5a.large"],
    "zones": ["us-east-1a", "us-east-1b"],
    "mode": "auto-switch",
    "traffic": {"elasticIpAllocationId": "eipalloc-0a1b2c3d4e5f60718"},
    "termination": {"terminateWaitSeconds": 30},
}
GAME = {
    "region": "us-east-1",
    "launchTemplate": {"name": "game-server"},
    "instanceTypes": ["c5.xlarge", "c5a.xlarge"],
    "zones": ["us-east-1a", "us-east-1b"],
    "mode": "manual-replica",
    "traffic": {"elasticIpAllocationId": "eipalloc-0b1c2d3e4f5a60719"},
}


@dataclass
class Ledger:
    """Cost of everything running, against running each primary on on-demand instead."""

    cost: dict[str, float] = field(default_factory=dict)
    on_demand: dict[str, float] = field(default_factory=dict)

    def accrue(self, world: World, seconds: float) -> None:
        hours = seconds / 3600
        for key, state in world.agents.items():
            for inst in world.live(state.ref.name):
                price = (
                    world.prices.get(inst.pool, 0.0)
                    if inst.pool.is_spot
                    else world.on_demand[inst.pool.instance_type]
                )
                self.cost[key] = self.cost.get(key, 0.0) + price * hours
                if inst.role is Role.PRIMARY:
                    od = world.on_demand[inst.pool.instance_type]
                    self.on_demand[key] = self.on_demand.get(key, 0.0) + od * hours


class Timeline:
    def __init__(self, world: World, console: Console) -> None:
        self.world = world
        self.console = console
        self.start = world.clock.now()
        self.seen = 0

    def stamp(self, when: datetime | None = None) -> str:
        delta = (when or self.world.clock.now()) - self.start
        minutes = int(delta.total_seconds() // 60)
        return f"{minutes // 60:02d}:{minutes % 60:02d}:{int(delta.total_seconds()) % 60:02d}"

    def say(self, message: str, style: str = "bold cyan") -> None:
        self.console.print(f"[dim]{self.stamp()}[/dim]  [{style}]{message}[/{style}]")

    def flush(self) -> None:
        events = self.world.objects.events[self.seen :]
        self.seen += len(events)
        for ev in events:
            # Switch transitions are told once, by the SwitchRequest; launch chatter is left out.
            if ev.reason in {"ReplicaLaunching", "ReplicaSyncing"} or (
                ev.kind == "SpotAgent" and ev.reason.startswith("Switch")
            ):
                continue
            colour = "yellow" if ev.warning else "green"
            message = ev.message.removeprefix(f"{ev.name}: ")
            self.console.print(
                f"[dim]{self.stamp(ev.at)}[/dim]  [{colour}]{ev.reason:<18}[/{colour}] "
                f"[bold]{ev.kind}/{ev.name}[/bold] {message}"
            )


async def _advance(
    world: World, ledger: Ledger, timeline: Timeline, seconds: float, step: float = 15.0
) -> None:
    remaining = seconds
    while remaining > 0:
        dt = min(step, remaining)
        ledger.accrue(world, dt)
        await world.tick(dt)
        timeline.flush()
        remaining -= dt


async def run_demo(console: Console, hours: float = 24.0) -> tuple[World, Ledger]:
    world = with_prices(World(boot_seconds=90, agent_start_seconds=15), PRICES)
    world.on_demand.update(ON_DEMAND)
    ledger = Ledger()
    timeline = Timeline(world, console)
    primary: Callable[[str], str] = lambda name: world.primaries(name)[0].instance_id  # noqa: E731

    steps: list[tuple[float, str, Callable[[], Awaitable[None] | None]]] = []

    def at(hour: float, title: str) -> Callable[[Callable[[], Awaitable[None] | None]], None]:
        def register(fn: Callable[[], Awaitable[None] | None]) -> None:
            steps.append((hour, title, fn))

        return register

    @at(0.0, "kubectl apply -f examples/: build-server (auto-switch) and game-server (manual-replica)")
    def _create() -> None:
        world.add_agent("build-server", SpotAgentSpec.model_validate(BUILD))
        world.add_agent("game-server", SpotAgentSpec.model_validate(GAME))

    @at(2.0, "AWS: rebalance recommendation for build-server's primary")
    def _rebalance() -> None:
        world.notice(primary("build-server"), NoticeKind.REBALANCE)

    @at(6.0, "AWS: 2-minute interruption notice for game-server's primary (a standby is ready)")
    def _interrupt_game() -> None:
        victim = primary("game-server")
        world.notice(victim, NoticeKind.INTERRUPTION, source="sqs")
        world.notice(victim, NoticeKind.INTERRUPTION, source="agent")  # the same notice twice: one failover

    @at(6.0 + 2 / 60, "AWS reclaims the interrupted instance")
    def _reclaim_game() -> None:
        for inst in world.ec2.live():
            if inst.role is Role.RETIRING:
                world.reclaim(inst.instance_id)

    @at(9.0, "AWS: interruption notice for build-server, no replica; every spot pool is short of capacity")
    def _interrupt_build() -> None:
        for name in PRICES:
            if name.startswith(("m5.", "m5a.")):
                from spot_operator.planning import Pool

                world.ec2.set_capacity(Pool.parse(name), 0)
        world.notice(primary("build-server"), NoticeKind.INTERRUPTION)

    @at(9.0 + 2 / 60, "AWS reclaims it")
    def _reclaim_build() -> None:
        for inst in world.ec2.live():
            if inst.role is Role.RETIRING:
                world.reclaim(inst.instance_id)

    @at(12.0, "spot capacity is back; a person asks: kubectl create switchrequest build-server-cheapest")
    def _back_to_spot() -> None:
        from spot_operator.planning import Pool

        for name in PRICES:
            world.ec2.set_capacity(Pool.parse(name), 1_000_000)
        world.request_switch("build-server", "build-server-cheapest", SwitchTarget(kind=TargetKind.CHEAPEST))

    @at(15.0, "spotctl promote game-server (promote the standby by hand)")
    def _promote() -> None:
        state = world.agent("game-server")
        ready = [r for r in state.replicas.values() if r.phase is not None and r.phase.value == "Ready"]
        world.request_switch(
            "game-server",
            "game-server-promote",
            SwitchTarget(kind=TargetKind.REPLICA, replica_ref=ready[0].name),
        )

    elapsed = 0.0
    for hour, title, fn in sorted(steps, key=lambda s: s[0]):
        await _advance(world, ledger, timeline, hour * 3600 - elapsed)
        elapsed = hour * 3600
        console.print()
        timeline.say(title)
        result = fn()
        if result is not None:
            await result
        await _advance(world, ledger, timeline, 0.001, step=0.001)
    await _advance(world, ledger, timeline, hours * 3600 - elapsed, step=15.0)
    return world, ledger


def summary(world: World, ledger: Ledger, console: Console) -> None:
    table = Table(title="After the day")
    for col in ("SpotAgent", "Mode", "Primary", "Pool", "Phase", "Switches", "Cost", "On-demand", "Saved"):
        table.add_column(col)
    for key, state in world.agents.items():
        status = state.status
        done = [s for s in state.switches.values() if s.status.phase.value == "Completed"]
        cost, od = ledger.cost.get(key, 0.0), ledger.on_demand.get(key, 0.0)
        table.add_row(
            key,
            state.spec.mode.value,
            status.primary.instance_id if status.primary else "-",
            status.primary.pool if status.primary else "-",
            status.phase.value,
            str(len(done)),
            f"${cost:.2f}",
            f"${od:.2f}",
            f"{100 * (1 - cost / od):.0f}%" if od else "-",
        )
    console.print(table)
    downtime = [
        (s.name, s.status.timings.downtime_seconds)
        for state in world.agents.values()
        for s in state.switches.values()
        if s.status.timings and s.status.timings.downtime_seconds is not None
    ]
    for name, seconds in downtime:
        console.print(f"  {name}: downtime {seconds:.0f} s")
    calls = sum(1 for op, _ in world.ec2.calls if op == "describe_owned")
    console.print(
        f"EC2 calls: {len(world.ec2.calls)} ({calls} describes); instances launched: {len(world.ec2.records)}"
    )


@app.command()
def demo(hours: float = typer.Option(24.0, help="Simulated hours to run.")) -> None:
    """Run a scripted day on in-memory EC2 and print the timeline (no cluster, AWS or database needed)."""
    console = Console(width=None if Console().is_terminal else 132)
    console.rule("spot-optimizer: a scripted day on a simulated clock")
    world, ledger = asyncio.run(run_demo(console, hours))
    console.print()
    summary(world, ledger, console)
    console.print(
        "[dim]Planner, actuator and reconciler are the operator's own; EC2 and the clock are simulated.[/dim]"
    )
