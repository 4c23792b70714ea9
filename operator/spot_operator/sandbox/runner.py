"""`spotctl sandbox`: the operator for real, on a laptop, in about half a minute.

It starts a moto server, the Kubernetes API emulation and a SQLite store; creates in moto what the examples
refer to; runs the real operator (``main.run``: kopf handlers, agent API, loops) against them; applies the
auto-switch and manual-replica examples; plays the on-instance agents (heartbeats, then a rebalance
recommendation and an interruption notice through the agent API, as a spot-agent reports them); prints
what happens as it happens; checks the outcome; and stops everything it started.

This module starts and stops the parts; :mod:`.scenario` is what happens in between.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from spot_operator.adapters.aws import AwsClients, AwsConfig, AwsEc2, AwsSpotPrices, AwsTraffic
from spot_operator.adapters.kube import Connection, KubeClient
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
    ManifestError,
    adapt,
    examples_dir,
    read_example,
)
from spot_operator.sandbox.moto import ACCESS_KEY, SECRET_KEY, free_port
from spot_operator.sandbox.observer import Observer
from spot_operator.sandbox.scenario import NAMESPACE, Outcome, Scenario
from spot_operator.sandbox.services import (
    SandboxFailure,
    logs_to,
    moto_running,
    operator_running,
    tail,
)
from spot_operator.sandbox.snapshot import Snapshot
from spot_operator.sandbox.timeline import Event, Timeline
from spot_operator.sandbox.watch import Clock, Watch
from spot_operator.settings import Settings

DEFAULT_BUDGET_SECONDS = 110.0  # the whole run, start to stop, stays under two minutes


@dataclass(frozen=True)
class SandboxOptions:
    examples: Path = field(default_factory=examples_dir)
    budget_seconds: float = DEFAULT_BUDGET_SECONDS
    heartbeat_seconds: float = 0.5
    poll_seconds: float = 0.2
    log_file: Path | None = None  # keep the operator's log here (default: in the temporary directory)


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
    workdir: Path | None = None  # the temporary directory (removed at the end)
    log_tail: str = ""


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
        directory = result.workdir = Path(tmp)
        log_file = options.log_file or directory / "operator.log"
        with logs_to(log_file):
            try:
                await _run(options, directory, clock, timeline, result)
                result.ok = result.operator_exit_code == 0
                if not result.ok:
                    result.error = f"the operator exited with {result.operator_exit_code}"
            except (SandboxFailure, ManifestError) as exc:
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
    settings = operator_settings(result.store_url)
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
                observer = Observer(
                    kube, aws, engine, NAMESPACE, (subs.elastic_ip_allocation_id,), (subs.target_group_arn,)
                )
                watch = Watch(
                    observer, timeline, clock, options.budget_seconds - 5.0, poll=options.poll_seconds
                )
                result.ledger = watch.ledger
                result.outcome.elastic_ip = subs.elastic_ip_allocation_id
                scenario = Scenario(watch, kube, fleet, running.agent_api, result.outcome)
                await scenario.run(*manifests)
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


def operator_settings(database_url: str | None) -> Settings:
    """An operator for one machine: standalone, local ports, fast loops."""
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
