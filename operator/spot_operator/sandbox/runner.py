"""`spotctl sandbox`: the operator for real, on a laptop, in about a minute.

It starts a moto server, the Kubernetes API emulation and a SQLite store; creates in moto what the examples
refer to; runs the real operator (``main.run``: kopf handlers, agent API, loops) against them; applies the
auto-switch and manual-replica examples; plays the on-instance agents (heartbeats, then a rebalance
recommendation and an interruption notice through the agent API, as a spot-agent reports them); prints
what happens as it happens; checks the outcome; and stops everything it started.

The steps are plain async functions over a :class:`Watch`, which looks at the sandbox from outside
(Kubernetes API, moto, store), adds what changed to the timeline and waits for a condition.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from spot_agent.protocol import NoticeKind
from spot_operator.adapters.aws import AwsClients, AwsConfig, AwsEc2, AwsSpotPrices, AwsTraffic
from spot_operator.adapters.kube import Connection, KubeClient, resource_path
from spot_operator.api.common import GROUP, VERSION
from spot_operator.main import Wiring
from spot_operator.sandbox import store
from spot_operator.sandbox.cloud import SandboxAws
from spot_operator.sandbox.fleet import Fleet
from spot_operator.sandbox.kubeapi import KubeApi, Served, project_crds, serve
from spot_operator.sandbox.ledger import Ledger
from spot_operator.sandbox.manifests import (
    AUTO_SWITCH_EXAMPLE,
    MANUAL_REPLICA_EXAMPLE,
    Manifest,
    adapt,
    examples_dir,
    read_example,
)
from spot_operator.sandbox.moto import ACCESS_KEY, SECRET_KEY, free_port
from spot_operator.sandbox.observer import Observer
from spot_operator.sandbox.services import (
    RunningOperator,
    SandboxFailure,
    logs_to,
    moto_running,
    operator_running,
    tail,
)
from spot_operator.sandbox.snapshot import GONE_STATES, Snapshot, changes
from spot_operator.sandbox.timeline import Event, Timeline
from spot_operator.settings import Settings

NAMESPACE = "default"
DEFAULT_BUDGET_SECONDS = 110.0  # the whole run, start to stop, stays under two minutes


@dataclass(frozen=True)
class SandboxOptions:
    examples: Path = field(default_factory=examples_dir)
    budget_seconds: float = DEFAULT_BUDGET_SECONDS
    heartbeat_seconds: float = 0.5
    poll_seconds: float = 0.2
    log_file: Path | None = None  # keep the operator's log here (default: in the temporary directory)


@dataclass
class Outcome:
    """What the scenario established, read from moto and the Kubernetes API."""

    auto_agent: str = ""
    manual_agent: str = ""
    elastic_ip: str = ""
    old_primary: str | None = None
    promoted: str | None = None
    standby: str | None = None
    notice_to_elastic_ip_seconds: float | None = None
    switch: str | None = None


@dataclass
class SandboxResult:
    ok: bool = False
    error: str | None = None
    seconds: float = 0.0
    events: list[Event] = field(default_factory=list)
    outcome: Outcome = field(default_factory=Outcome)
    final: Snapshot = field(default_factory=Snapshot)
    ledger: Ledger = field(default_factory=Ledger)
    store: store.StoreCounts | None = None
    store_url: str = ""
    operator_exit_code: int | None = None
    moto_pid: int | None = None
    log_tail: str = ""


class Clock:
    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.start = self.loop.time()

    def __call__(self) -> float:
        return self.loop.time() - self.start


@dataclass
class Watch:
    """Looks every ``poll`` seconds while waiting; every change goes on the timeline."""

    observer: Observer
    timeline: Timeline
    clock: Clock
    deadline: float  # clock seconds
    ledger: Ledger = field(default_factory=Ledger)
    poll: float = 0.2
    last: Snapshot = field(default_factory=Snapshot)
    _last_at: float | None = None

    async def look(self) -> Snapshot:
        snap = await self.observer.look()
        at = self.clock()
        if self._last_at is not None:
            self.ledger.accrue(self.last, at - self._last_at)
        for change in changes(self.last, snap):
            self.timeline.change(at, change)
        self.last, self._last_at = snap, at
        return snap

    async def until(
        self, what: str, predicate: Callable[[Snapshot], object], within: float
    ) -> tuple[Snapshot, float]:
        """Wait until ``predicate`` holds for a fresh snapshot; return it and when it was taken."""
        limit = min(self.clock() + within, self.deadline)
        while True:
            snap = await self.look()
            if predicate(snap):
                return snap, self.clock()
            if self.clock() > limit:
                budget = " (the sandbox's time budget is spent)" if limit == self.deadline else ""
                raise SandboxFailure(f"timed out after {within:.0f} s waiting for {what}{budget}")
            await asyncio.sleep(self.poll)


# ------------------------------------------------------------------------------------------ the run


async def run_sandbox(
    options: SandboxOptions | None = None, show: Callable[[Event], None] = lambda e: None
) -> SandboxResult:
    """Run the whole sandbox; never raises for a failure of the scenario (see ``result.error``)."""
    options = options or SandboxOptions()
    clock = Clock()
    timeline = Timeline(show)
    result = SandboxResult(events=timeline.events)
    with tempfile.TemporaryDirectory(prefix="spot-sandbox-") as tmp:
        directory = Path(tmp)
        log_file = options.log_file or directory / "operator.log"
        with logs_to(log_file):
            try:
                await _run(options, directory, clock, timeline, result)
                result.ok = result.operator_exit_code == 0
                if not result.ok:
                    result.error = f"the operator exited with {result.operator_exit_code}"
            except SandboxFailure as exc:
                result.error = str(exc)
            except Exception as exc:  # anything else is a bug, but the run still reports and cleans up
                result.error = f"{type(exc).__name__}: {exc}"
        if not result.ok:
            result.log_tail = tail(log_file)
        result.seconds = clock()
        timeline.add(result.seconds, "stopped", "stopped everything; temporary files removed")
    return result


async def _run(
    options: SandboxOptions, directory: Path, clock: Clock, timeline: Timeline, result: SandboxResult
) -> None:
    examples = [
        read_example(options.examples, AUTO_SWITCH_EXAMPLE),
        read_example(options.examples, MANUAL_REPLICA_EXAMPLE),
    ]
    async with moto_running() as moto:
        result.moto_pid = moto.process.pid if moto.process else None
        timeline.add(clock(), "moto-up", f"moto server up at {moto.url} (pid {result.moto_pid})")
        api = KubeApi(namespaces=(NAMESPACE,), crds=project_crds())
        async with serve(api, kubeconfig=directory / "kubeconfig") as served:
            timeline.add(clock(), "kube-up", f"Kubernetes API emulation up at {served.url}")
            result.store_url = store.sqlite_url(directory)
            engine = await asyncio.to_thread(store.prepare, result.store_url)
            try:
                timeline.add(clock(), "store-up", "store: SQLite, migrated to head")
                await _with_store(options, clock, timeline, result, examples, moto.url, served, engine)
                result.store = await asyncio.to_thread(store.counts, engine)
            finally:
                engine.dispose()
        timeline.add(clock(), "kube-down", "Kubernetes API emulation stopped")
    timeline.add(clock(), "moto-down", "moto server stopped")


async def _with_store(
    options: SandboxOptions,
    clock: Clock,
    timeline: Timeline,
    result: SandboxResult,
    examples: list[Manifest],
    moto_url: str,
    served: Served,
    engine: Engine,
) -> None:
    aws = SandboxAws(moto_url)
    subs = await asyncio.to_thread(aws.prepare, examples)
    manifests = [adapt(doc, subs) for doc in examples]
    timeline.add(
        clock(),
        "aws-ready",
        f"moto: AMI {subs.image_id}, launch template, instance profile, security group, target group, "
        f"Elastic IP {subs.elastic_ip_allocation_id}",
    )
    settings = _settings(result.store_url)
    clients = AwsClients(
        AwsConfig(endpoint_url=moto_url, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
    )
    wiring = Wiring(
        connection=Connection(server=served.url),
        ec2=AwsEc2(clients),
        traffic=AwsTraffic(clients),
        prices=AwsSpotPrices(clients),
        ignored_tasks=served.api.server_tasks,
    )
    kube = KubeClient(Connection(server=served.url))
    try:
        async with operator_running(settings, wiring) as running:
            timeline.add(clock(), "operator-ready", "operator ready: kopf handlers, agent API, loops")
            fleet = Fleet(served, interval=options.heartbeat_seconds)
            beating = asyncio.create_task(fleet.run([running.op], [running.agent_api]), name="fleet")
            try:
                observer = Observer(kube, aws, engine, NAMESPACE, (subs.elastic_ip_allocation_id,))
                watch = Watch(
                    observer, timeline, clock, options.budget_seconds - 5.0, poll=options.poll_seconds
                )
                result.ledger = watch.ledger
                result.outcome.elastic_ip = subs.elastic_ip_allocation_id
                await _scenario(watch, kube, fleet, running, manifests, result.outcome)
                result.final = watch.last
                if fleet.rejected:
                    raise SandboxFailure(f"the agent API refused the fleet's reports: {fleet.rejected[:3]}")
            finally:
                beating.cancel()
                await asyncio.gather(beating, return_exceptions=True)
        result.operator_exit_code = running.exit_code
        timeline.add(clock(), "operator-stopped", f"operator stopped (exit code {running.exit_code})")
    finally:
        await kube.close()


def _settings(database_url: str) -> Settings:
    return Settings(
        standalone=True,
        health_port=free_port(),
        metrics_port=free_port(),
        agent_api_port=free_port(),
        agent_api_host="127.0.0.1",
        observe_interval_seconds=1,
        price_interval_seconds=10,
        decision_interval_seconds=3600,
        database_url=database_url,
        log_format="text",
    )


# ------------------------------------------------------------------------------------ the scenario


def _name(doc: Manifest) -> str:
    return str(doc["metadata"]["name"])


async def _scenario(
    watch: Watch,
    kube: KubeClient,
    fleet: Fleet,
    running: RunningOperator,
    manifests: list[Manifest],
    outcome: Outcome,
) -> None:
    auto, manual = (_name(doc) for doc in manifests)
    outcome.auto_agent, outcome.manual_agent = auto, manual
    timeline, clock = watch.timeline, watch.clock
    path = resource_path(GROUP, VERSION, "spotagents", NAMESPACE)
    for doc in manifests:
        await kube.create(path, doc)
        timeline.act(
            clock(), "applied", f"SpotAgent applied ({doc['spec']['mode']})", _name(doc), "applying it"
        )

    def serving(snap: Snapshot, agent: str) -> bool:
        seen = snap.agents.get(agent)
        return seen is not None and seen.phase == "Ready" and seen.primary_id is not None

    def standby_ready(snap: Snapshot) -> bool:
        return any(r.phase == "Ready" for r in snap.replicas_of(manual, "manual"))

    snap, _ = await watch.until(
        "both SpotAgents Ready and the manual-replica standby Ready",
        lambda s: serving(s, auto) and serving(s, manual) and standby_ready(s),
        within=45,
    )
    outcome.standby = next(r.instance_id for r in snap.replicas_of(manual, "manual") if r.phase == "Ready")
    old = snap.agents[auto].primary_id
    assert old is not None
    outcome.old_primary = old

    # A rebalance recommendation: auto-switch launches a replica in the safest other pool.
    await _notify(watch, fleet, running, auto, old, NoticeKind.REBALANCE)
    snap, _ = await watch.until(
        "the rebalance replica Ready",
        lambda s: any(r.phase == "Ready" and r.instance_id for r in s.replicas_of(auto, "rebalance")),
        within=30,
    )
    replica = next(r for r in snap.replicas_of(auto, "rebalance") if r.phase == "Ready")
    outcome.promoted = replica.instance_id

    # The 2-minute interruption notice: the Elastic IP moves to the Ready replica, the old primary goes.
    noticed = await _notify(watch, fleet, running, auto, old, NoticeKind.INTERRUPTION)
    eip = outcome.elastic_ip
    snap, moved = await watch.until(
        f"the Elastic IP to move to {replica.instance_id}",
        lambda s: s.elastic_ips.get(eip) == replica.instance_id,
        within=30,
    )
    outcome.notice_to_elastic_ip_seconds = moved - noticed
    timeline.add(
        moved,
        "traffic-moved",
        f"traffic moved: {eip} now on {replica.instance_id}, "
        f"{outcome.notice_to_elastic_ip_seconds:.2f} s after the notice (seen from moto)",
        auto,
        replica.instance_id,
    )

    def failed_over(s: Snapshot) -> bool:
        gone = s.instances.get(old)
        done = [w for w in s.switches.values() if w.agent == auto and w.old_instance_id == old]
        return (
            gone is not None
            and gone.state in GONE_STATES
            and serving(s, auto)
            and s.agents[auto].primary_id == replica.instance_id
            and any(w.phase == "Completed" for w in done)
        )

    snap, _ = await watch.until(f"{old} terminated and the failover Completed", failed_over, within=30)
    outcome.switch = next(
        w.name for w in snap.switches.values() if w.old_instance_id == old and w.phase == "Completed"
    )
    _check(snap, outcome)


async def _notify(
    watch: Watch, fleet: Fleet, running: RunningOperator, agent: str, instance_id: str, kind: NoticeKind
) -> float:
    at = watch.clock()
    answer = await fleet.notify(running.agent_api, NAMESPACE, agent, instance_id, kind, datetime.now(UTC))
    if not answer.ok:
        raise SandboxFailure(f"the agent API refused the {kind.value} notice: {answer.status} {answer.body}")
    what = "rebalance recommendation" if kind is NoticeKind.REBALANCE else "interruption notice (terminate)"
    text = f"{what} for {instance_id}, reported by its agent"
    watch.timeline.act(at, f"{kind.value}-notice", text, agent, f"the {what.split(' (')[0]}", instance_id)
    return at


def _check(snap: Snapshot, outcome: Outcome) -> None:
    """The invariants, read from moto: one primary per agent, the Elastic IP on the promoted instance."""
    for agent in (outcome.auto_agent, outcome.manual_agent):
        primaries = snap.live(agent, "primary")
        if len(primaries) != 1:
            raise SandboxFailure(f"{agent} has {len(primaries)} live primaries in EC2, not exactly one")
    if snap.elastic_ips.get(outcome.elastic_ip) != outcome.promoted:
        raise SandboxFailure(f"the Elastic IP is not on the promoted instance {outcome.promoted}")
