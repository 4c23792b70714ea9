"""1,000 SpotAgents created at once: time until all are Ready, the operator's CPU and memory, AWS calls.

Four processes, so that the operator's figures are the operator's alone:

- moto (``spot_operator.sandbox.moto.MotoServer``): AWS;
- the Kubernetes API emulation (``python -m spot_operator.sandbox.kubeapi``);
- the operator: ``spot_operator.main.run`` in a child of this script (``--operator-child``), with the
  production intervals unless told otherwise, the boto3 adapters on moto, kopf on the emulation, the agent
  API on 127.0.0.1. Its AWS calls are counted by the adapters' call hook and attributed to what made them
  (the observe loop, launches, the price loop, other actuation), and the time each call queued in the
  thread pool boto3 runs in is recorded; it answers ``GET /stats`` on a side port;
- this script: creates the SpotAgents in one burst (``--create-concurrency`` POSTs in flight), watches
  them, and plays their on-instance agents: each agent's first heartbeat goes out as soon as its primary
  appears in the status (as a booted agent would), then one every ``--heartbeat-interval`` seconds, at
  most ``--heartbeat-concurrency`` in flight over one keep-alive connection pool.

Before the burst one more agent (``canary``, with an Elastic IP) is made Ready; ``--notice-after`` seconds
into the burst its agent reports a 2-minute interruption notice, and the time until the replacement's
launch call goes out is printed: how an emergency fares behind a mass creation.

With ``--notice-rate R`` (e.g. 100), after the steady state the driver sends interruption notices through
the agent API at R per second for ``--notice-seconds``, open loop: first notices for distinct agents'
primaries, re-deliveries of some of them (another idempotency key, as a restarted agent sends) and notices
for instances nobody owns; a 5xx is sent again after its Retry-After, as spot-agent does. The new
instances of the emergency switches heartbeat as booted agents would. Printed: API latency (p50/p95/p99),
answers by status, how long until each notified agent's primary moved, and checks read afresh from the
emulation and moto: no notice lost (every notified agent has a new primary), none handled twice (one
emergency SwitchRequest and one launch each), one running primary per agent, untouched agents untouched.

Printed: time from the first create to 50 %, 90 % and 100 % Ready (and to every primary launched); CPU
seconds of each process during the ramp and per minute in the steady state that follows (``--steady-seconds``
after the last agent is Ready); the operator's peak RSS; AWS calls by operation during the ramp and per
observe cycle in the steady state; how long AWS calls queued; heartbeats sent and refused; the canary.
``--py-spy PATH`` also profiles the operator in both windows and prints the hottest frames.

moto is slow where AWS is fast (a tag-filtered DescribeInstances scans every instance's tags: tens of
seconds once 1,000 instances exist while launches run, and moto serves one request at a time), so wall
times in the ramp are mostly moto's: read the call counts, not the seconds, for what AWS would see.

    PYTHONPATH=operator:agent:. .venv/bin/python bench/reconcile.py [--agents 1000] [--steady-seconds 120] \
        [--notice-rate 100 --notice-seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import heapq
import json
import math
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import psutil
from aiohttp import web
from botocore.config import Config

REPO = Path(__file__).resolve().parent.parent
AMI = "ami-0123456789abcdef0"
TYPES = ("m5.large", "m5a.large", "c5.large", "r5.large")
NAMESPACE = "default"
GROUP_PATH = "/apis/spotoptimizer.io/v1alpha1"
TOKEN_LABEL = "spotoptimizer.io/token=agent"
READ_TIMEOUT_SECONDS = 300.0  # moto under a burst answers one request at a time

# --- the operator, in its own process ----------------------------------------------------------------------

# What an AWS call was made for; the call hook runs in the worker thread, which inherits the caller's context.
PURPOSE: contextvars.ContextVar[str] = contextvars.ContextVar("bench_aws_purpose", default="actuation")
# The agent a launch is for, so the canary's calls can be timed.
AGENT: contextvars.ContextVar[str] = contextvars.ContextVar("bench_aws_agent", default="")
# What a launch is for ("switch/<name>", "replica/<name>", ...), so each launch can be attributed.
LAUNCH_PURPOSE: contextvars.ContextVar[str] = contextvars.ContextVar("bench_launch_purpose", default="")
LAUNCH_ACTIONS = ("ec2:RunInstances", "ec2:CreateFleet")
CANARY = "canary"


def progress(text: str) -> None:
    """A progress line on stderr (the report goes to stdout)."""
    print(text, file=sys.stderr, flush=True)


class TimedExecutor(ThreadPoolExecutor):
    """One of the operator's AWS worker pools (same size and name), recording how long each job queued.

    Every boto3 call of the operator runs in one of two pools (``adapters.aws.errors``: bulk work, and the
    urgent pool of failover launches and traffic moves), so the wait is the time an AWS call spent behind
    the others before it was even sent.
    """

    def __init__(self, max_workers: int, prefix: str) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=prefix)
        self.waits: list[float] = []

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        queued = time.perf_counter()

        def timed() -> Any:
            self.waits.append(time.perf_counter() - queued)
            return fn(*args, **kwargs)

        return super().submit(timed)


def operator_child(config: Mapping[str, Any]) -> int:
    """Run the real operator (``main.run``) against the emulation and moto; serve ``/stats`` beside it."""
    from spot_operator.adapters.aws import AwsClients, AwsConfig, AwsEc2, AwsSpotPrices, AwsTraffic
    from spot_operator.adapters.aws.clients import CallRecorder
    from spot_operator.adapters.kube import Connection
    from spot_operator.main import Wiring, configure_logging, run
    from spot_operator.metrics import REGISTRY
    from spot_operator.runtime.operator import Operator
    from spot_operator.sandbox.moto import ACCESS_KEY, SECRET_KEY
    from spot_operator.settings import Settings

    class PurposeRecorder(CallRecorder):
        def __init__(self) -> None:
            super().__init__()
            self.by_purpose: Counter[tuple[str, str]] = Counter()
            self.canary: list[tuple[float, str]] = []  # (wall time the call was sent, action)
            self.launches: list[tuple[float, str, str]] = []  # (wall time, agent, purpose) per launch call

        def record(self, action: str) -> None:
            super().record(action)
            with self._lock:
                self.by_purpose[(PURPOSE.get(), action)] += 1
                if AGENT.get() == f"{NAMESPACE}/{CANARY}":
                    self.canary.append((time.time(), action))
                if action in LAUNCH_ACTIONS:
                    self.launches.append((time.time(), AGENT.get(), LAUNCH_PURPOSE.get()))

    @contextlib.contextmanager
    def purpose(name: str) -> Iterator[None]:
        token = PURPOSE.set(name)
        try:
            yield
        finally:
            PURPOSE.reset(token)

    class BenchEc2(AwsEc2):
        observes = 0
        observe_seconds: list[float] = []

        async def describe_owned(self, region: str) -> Any:
            started = time.perf_counter()
            with purpose("observe"):
                try:
                    return await super().describe_owned(region)
                finally:
                    BenchEc2.observes += 1
                    BenchEc2.observe_seconds.append(time.perf_counter() - started)

        async def launch(self, request: Any) -> Any:
            token = AGENT.set(request.agent)
            why = LAUNCH_PURPOSE.set(request.purpose)
            try:
                with purpose("launch"):
                    return await super().launch(request)
            finally:
                LAUNCH_PURPOSE.reset(why)
                AGENT.reset(token)

    class BenchTraffic(AwsTraffic):
        async def serving(self, region: str, allocation_ids: Sequence[str]) -> Any:
            with purpose("observe"):
                return await super().serving(region, allocation_ids)

    class BenchPrices(AwsSpotPrices):
        async def spot_prices(self, *args: Any, **kwargs: Any) -> Any:
            with purpose("prices"):
                return await super().spot_prices(*args, **kwargs)

        async def on_demand_prices(self, region: str, instance_types: Sequence[str]) -> Any:
            with purpose("prices"):
                return await super().on_demand_prices(region, instance_types)

    settings = Settings(
        standalone=True,
        health_port=config["health_port"],
        metrics_port=config["metrics_port"],
        agent_api_port=config["agent_api_port"],
        agent_api_host="127.0.0.1",
        observe_interval_seconds=config["observe_interval"],
        price_interval_seconds=config["price_interval"],
        decision_interval_seconds=config["decision_interval"],
        log_format="json",
        log_level=config["log_level"],
    )
    configure_logging(settings)  # stdout, as in a pod: the parent sends it to a file
    recorder = PurposeRecorder()
    clients = AwsClients(
        AwsConfig(
            endpoint_url=config["moto_url"],
            read_timeout=READ_TIMEOUT_SECONDS,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        ),
        recorder=recorder,
    )
    started: list[Operator] = []
    from spot_operator.adapters.aws import errors as aws_errors

    bulk = TimedExecutor(aws_errors.BULK_THREADS, "aws")
    urgent = TimedExecutor(aws_errors.URGENT_THREADS, "aws-urgent")
    aws_errors._pools.update({False: bulk, True: urgent})  # before the first AWS call creates them

    def sample(name: str, labels: dict[str, str]) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    async def stats(request: web.Request) -> web.Response:
        if "brief" in request.query:  # polled often: the observe count only
            return web.json_response({"observes": BenchEc2.observes})
        if "launches" in request.query:  # every launch call: (wall time, agent, purpose)
            with recorder._lock:
                return web.json_response({"launches": list(recorder.launches)})
        op = started[0] if started else None
        usage = resource.getrusage(resource.RUSAGE_SELF)
        by_purpose: dict[str, dict[str, int]] = {}
        with recorder._lock:
            for (why, action), n in recorder.by_purpose.items():
                by_purpose.setdefault(why, {})[action] = n
        body = {
            "pid": os.getpid(),
            "cpu_seconds": time.process_time(),
            "max_rss_kib": usage.ru_maxrss,
            "calls": by_purpose,
            "observes": BenchEc2.observes,
            "observe_seconds": BenchEc2.observe_seconds,
            "agents": len(op.agents) if op else 0,
            "reconciles": sample("spot_optimizer_reconcile_duration_seconds_count", {"kind": "SpotAgent"}),
            "reconcile_seconds": sample(
                "spot_optimizer_reconcile_duration_seconds_sum", {"kind": "SpotAgent"}
            ),
            "tasks": len(asyncio.all_tasks()),
            "canary_calls": recorder.canary,
            "pool_workers": bulk._max_workers,
            "pool_waits": [round(w, 4) for w in bulk.waits],
            "urgent_workers": urgent._max_workers,
            "urgent_waits": [round(w, 4) for w in urgent.waits],
        }
        return web.json_response(body)

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        app = web.Application()
        app.router.add_get("/stats", stats)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", config["stats_port"]).start()
        wiring = Wiring(
            connection=Connection(server=config["kube_url"]),
            ec2=BenchEc2(clients),
            traffic=BenchTraffic(clients),
            prices=BenchPrices(clients),
        )
        try:
            return await run(settings, wiring, stop, started.append)
        finally:
            await runner.cleanup()

    return asyncio.run(main())


# --- the driver: processes, the burst, the fleet of agents, the figures ------------------------------------


def free_port() -> int:
    from spot_operator.sandbox.moto import free_port as pick

    return pick()


def python_env() -> dict[str, str]:
    paths = [str(REPO / "operator"), str(REPO / "agent"), str(REPO)]
    old = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([*paths, *([old] if old else [])])}


@dataclass
class Child:
    """A process of ours, with its log file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def ps(self) -> psutil.Process:
        return psutil.Process(self.process.pid)

    def cpu(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def stop(self, timeout: float = 60.0) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode


def start_emulator(directory: Path) -> tuple[Child, str]:
    log = directory / "kubeapi.log"
    with log.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "spot_operator.sandbox.kubeapi", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=err,
            env=python_env(),
        )
    assert process.stdout is not None
    line = process.stdout.readline().decode()
    if "serving" not in line:
        process.kill()
        raise RuntimeError(f"the emulation did not start: {line!r}; see {log}")
    url = line.split("serving", 1)[1].split()[0]
    return Child("kube API emulation", process, log), url


def start_operator(directory: Path, config: dict[str, Any]) -> Child:
    log = directory / "operator.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--operator-child", json.dumps(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=python_env(),
        )
    return Child("operator", process, log)


def ec2_client(moto_url: str, region: str) -> Any:
    """A plain boto3 client on moto for the driver's own set-up and checks (not counted)."""
    from spot_operator.sandbox.moto import ACCESS_KEY, SECRET_KEY

    session: Any = boto3.session.Session()
    return session.client(
        "ec2",
        region_name=region,
        endpoint_url=moto_url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(read_timeout=READ_TIMEOUT_SECONDS),
    )


def allocate_addresses(moto_url: str, region: str, count: int) -> list[str]:
    """Elastic IPs for the agents that have one (set-up, not counted: a plain boto3 client)."""
    ec2 = ec2_client(moto_url, region)
    return [str(ec2.allocate_address(Domain="vpc")["AllocationId"]) for _ in range(count)]


@dataclass(frozen=True)
class MotoInstance:
    instance_id: str
    state: str
    agent: str  # the spotoptimizer.io/agent tag: "<namespace>/<name>"
    role: str  # the spotoptimizer.io/role tag


def moto_instances(moto_url: str, region: str) -> list[MotoInstance]:
    """Every instance moto holds in ``region``, with our tags (one unfiltered DescribeInstances walk)."""
    from spot_operator import tags

    out = []
    for page in ec2_client(moto_url, region).get_paginator("describe_instances").paginate():
        for reservation in page.get("Reservations", ()):
            for raw in reservation.get("Instances", ()):
                tagged = {t["Key"]: t["Value"] for t in raw.get("Tags", ())}
                out.append(
                    MotoInstance(
                        raw["InstanceId"],
                        raw["State"]["Name"],
                        tagged.get(tags.AGENT, ""),
                        tagged.get(tags.ROLE, ""),
                    )
                )
    return out


def manifest(name: str, n: int, region: str, eip: str | None) -> dict[str, Any]:
    zones = [f"{region}a", f"{region}b"]
    spec: dict[str, Any] = {
        "region": region,
        "image": AMI,
        "instanceTypes": [TYPES[n % len(TYPES)], TYPES[(n + 1) % len(TYPES)]],
        "zones": zones,
        "mode": "auto-switch",
    }
    if eip:
        spec["traffic"] = {"elasticIpAllocationId": eip}
    return {
        "apiVersion": "spotoptimizer.io/v1alpha1",
        "kind": "SpotAgent",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }


@dataclass
class Watched:
    """What the driver learns from watching SpotAgents and the agents' token Secrets."""

    t0: float = 0.0
    created: dict[str, float] = field(default_factory=dict)
    primary: dict[str, str] = field(default_factory=dict)
    primary_at: dict[str, float] = field(default_factory=dict)
    ready_at: dict[str, float] = field(default_factory=dict)
    not_ready_after_ready: int = 0
    tokens: dict[str, str] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    canary: list[tuple[float, str | None, bool]] = field(default_factory=list)  # wall time, primary, Ready
    primary_changed_at: dict[str, float] = field(default_factory=dict)  # monotonic
    # SwitchRequests (watched with the notice burst only): name -> what the driver needs of each
    switches: dict[str, SwitchSeen] = field(default_factory=dict)
    # agent -> {switch: its new instance}, for switches in flight: their new instances heartbeat too
    switch_targets: dict[str, dict[str, str]] = field(default_factory=dict)

    def wants_beats(self, name: str, instance: str) -> bool:
        """The instance is the agent's primary, or the new instance of one of its switches in flight."""
        return self.primary.get(name) == instance or instance in self.switch_targets.get(name, {}).values()


SWITCH_FINAL = frozenset({"Completed", "Failed", "Superseded"})


@dataclass
class SwitchSeen:
    agent: str
    reason: str
    phase: str
    old: str | None
    new: str | None
    message: str
    first_seen: float  # monotonic


async def watch(
    http: aiohttp.ClientSession, url: str, path: str, params: Mapping[str, str], on_event: Any
) -> None:
    """A watch that resumes from the last resourceVersion when the stream ends (and relists on 410)."""
    version: str | None = None
    while True:
        query = {"watch": "true", **params}
        if version:
            query["resourceVersion"] = version
        try:
            async with http.get(url + path, params=query, timeout=aiohttp.ClientTimeout(total=None)) as resp:
                async for line in resp.content:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if event.get("type") == "ERROR":
                        version = None
                        break
                    obj = event.get("object") or {}
                    version = (obj.get("metadata") or {}).get("resourceVersion") or version
                    if event.get("type") != "BOOKMARK":
                        on_event(event["type"], obj)
        except (TimeoutError, aiohttp.ClientError):
            await asyncio.sleep(0.5)


def on_agent(w: Watched) -> Any:
    def handle(kind: str, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        status = obj.get("status") or {}
        now = time.monotonic()
        instance = (status.get("primary") or {}).get("instanceId")
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ()
        )
        if instance and w.primary.get(name) != instance:
            w.primary[name] = instance
            w.primary_changed_at[name] = now
            w.changed.set()
        if name == CANARY:
            w.canary.append((time.time(), instance, ready))
            return
        if instance:
            w.primary_at.setdefault(name, now)
        if ready and name not in w.ready_at:
            w.ready_at[name] = now
        elif not ready and name in w.ready_at:
            w.not_ready_after_ready += 1

    return handle


def on_switch(w: Watched) -> Any:
    def handle(kind: str, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        agent = (spec.get("agentRef") or {}).get("name", "")
        seen = w.switches.get(name)
        w.switches[name] = SwitchSeen(
            agent=agent,
            reason=str(spec.get("reason", "")),
            phase=str(status.get("phase") or "Pending"),
            old=status.get("oldInstanceId"),
            new=status.get("newInstanceId"),
            message=str(status.get("message") or ""),
            first_seen=seen.first_seen if seen else time.monotonic(),
        )
        targets = w.switch_targets.setdefault(agent, {})
        new = status.get("newInstanceId")
        if kind != "DELETED" and new and w.switches[name].phase not in SWITCH_FINAL:
            if targets.get(name) != new:
                targets[name] = new
                w.changed.set()
        else:
            targets.pop(name, None)

    return handle


def on_secret(w: Watched) -> Any:
    import base64

    suffix = "-spot-agent-token"

    def handle(kind: str, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        if kind == "DELETED" or not name.endswith(suffix):
            return
        token = (obj.get("data") or {}).get("token")
        if token:
            w.tokens[name.removesuffix(suffix)] = base64.b64decode(token).decode()
            w.changed.set()

    return handle


@dataclass
class Fleet:
    """The on-instance agents: a heartbeat when the primary first appears, then every ``interval``."""

    api: str
    watched: Watched
    interval: float
    concurrency: int
    beats: int = 0
    sent: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    latency: list[float] = field(default_factory=list)
    _due: list[tuple[float, str, str]] = field(default_factory=list)
    _scheduled: set[tuple[str, str]] = field(default_factory=set)

    def _discover(self) -> None:
        now = time.monotonic()
        wanted = [*self.watched.primary.items()]
        wanted += [(n, i) for n, targets in self.watched.switch_targets.items() for i in targets.values()]
        for name, instance in wanted:
            if (name, instance) not in self._scheduled and name in self.watched.tokens:
                self._scheduled.add((name, instance))
                heapq.heappush(self._due, (now, name, instance))

    async def run(self) -> None:
        limit = asyncio.Semaphore(self.concurrency)
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        pending: set[asyncio.Task[None]] = set()
        async with aiohttp.ClientSession(connector=connector) as http:
            while True:
                self._discover()
                now = time.monotonic()
                while self._due and self._due[0][0] <= now:
                    _, name, instance = heapq.heappop(self._due)
                    if not self.watched.wants_beats(name, instance):
                        self._scheduled.discard((name, instance))
                        continue  # no longer the primary (nor a switch's new instance)
                    await limit.acquire()
                    task = asyncio.create_task(self._beat(http, name, instance, limit))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                wait = self._due[0][0] - time.monotonic() if self._due else 1.0
                self.watched.changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.watched.changed.wait(), max(min(wait, 1.0), 0.005))

    async def _beat(
        self, http: aiohttp.ClientSession, name: str, instance: str, limit: asyncio.Semaphore
    ) -> None:
        from spot_agent.protocol import Health, HeartbeatReport, report_path

        retry = self.interval
        self.beats += 1
        try:
            beat = HeartbeatReport(
                instance_id=instance,
                agent_version="bench",
                health=Health.OK,
                sync_progress=100,
                sent_at=datetime.now(UTC),
                idempotency_key=f"beat-{self.beats:09d}",
            )
            headers = {
                "Authorization": f"Bearer {self.watched.tokens[name]}",
                "Content-Type": "application/json",
            }
            started = time.perf_counter()
            try:
                url = self.api + report_path(NAMESPACE, name, beat)
                async with http.post(url, data=beat.to_json(), headers=headers) as resp:
                    await resp.read()
                    status = resp.status
            except aiohttp.ClientError as exc:
                self.refused[type(exc).__name__] += 1
                retry = 1.0
            else:
                self.latency.append(time.perf_counter() - started)
                if status < 300:
                    self.sent += 1
                else:
                    self.refused[str(status)] += 1
                    retry = 1.0  # e.g. the operator has not loaded the token yet
        finally:
            limit.release()
        heapq.heappush(self._due, (time.monotonic() + retry, name, instance))


def notice_report(instance: str, key: str) -> Any:
    """A 2-minute interruption notice for ``instance``, as spot-agent reports it."""
    from spot_agent.protocol import InstanceAction, NoticeKind, NoticeReport

    now = datetime.now(UTC)
    return NoticeReport(
        instance_id=instance,
        kind=NoticeKind.INTERRUPTION,
        action=InstanceAction.TERMINATE,
        notice_time=now,
        deadline=now + timedelta(minutes=2),
        idempotency_key=key,
    )


async def post_notice(
    http: aiohttp.ClientSession, api: str, name: str, token: str, notice: Any
) -> tuple[int, str, float | None]:
    """POST a notice: the HTTP status, the answer's ``status`` (or error code), its Retry-After."""
    from spot_agent.protocol import report_path

    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    url = api + report_path(NAMESPACE, name, notice)
    async with http.post(url, data=notice.to_json(), headers=headers) as resp:
        body = await resp.read()
        retry_after = resp.headers.get("Retry-After")
        status = resp.status
    try:
        answer = json.loads(body)
        code = str(answer.get("status") or answer.get("error") or "") if isinstance(answer, dict) else ""
    except ValueError:
        code = ""
    try:
        wait = float(retry_after) if retry_after is not None else None
    except ValueError:
        wait = None
    return status, code, wait


async def interrupt(http: aiohttp.ClientSession, api: str, name: str, token: str, instance: str) -> int:
    """A 2-minute interruption notice for ``instance``, as spot-agent reports it; the HTTP status."""
    status, _, _ = await post_notice(http, api, name, token, notice_report(instance, f"notice-{instance}"))
    return status


def canary_summary(notice: Mapping[str, Any], calls: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """Seconds from the notice to the replacement's first AWS call and to its RunInstances."""
    at = notice["at"]
    after = [(t - at, action) for t, action in calls if t >= at]
    launch = next((d for d, action in after if action == "ec2:RunInstances"), None)
    return {
        "status": notice["status"],
        "after": notice["after"],
        "first_call": after[0] if after else None,
        "run_instances": launch,
    }


# --- the notice burst (--notice-rate) ----------------------------------------------------------------------


@dataclass
class NoticeSent:
    """One notice request of the burst (retried after a 5xx, as spot-agent does) and what came of it."""

    n: int
    agent: str  # the SpotAgent's name
    instance: str
    kind: str  # first | redelivery | unknown
    due: float = 0.0  # when the schedule says it goes out (monotonic)
    sent_at: float = 0.0  # when its first attempt went out
    answers: list[int] = field(default_factory=list)  # HTTP status of each attempt; 0: no answer
    outcome: str = ""  # the final answer's status (accepted, duplicate) or error code
    first_latency: float | None = None  # the first attempt's answer
    final_latency: float | None = None  # first attempt sent -> final (non-5xx) answer, retries included
    error: str = ""

    @property
    def final(self) -> int:
        return self.answers[-1] if self.answers else 0

    @property
    def retried(self) -> int:
        return sum(1 for a in self.answers[:-1] if a == 0 or a >= 500)


def plan_burst(
    primaries: Mapping[str, str],
    total: int,
    redeliveries: float,
    unknown: float,
    rng: Any,
) -> list[NoticeSent]:
    """The burst's requests in sending order: first notices for distinct agents' primaries, re-deliveries
    of earlier ones (same instance and kind, another idempotency key) a little later, and notices naming
    instances nobody owns, sent with the token of agents that get no other notice when there are some."""
    names = sorted(primaries)
    rng.shuffle(names)
    n_unknown = round(total * unknown)
    n_redeliveries = round(total * redeliveries)
    firsts = min(len(names), total - n_unknown - n_redeliveries)
    n_redeliveries = total - n_unknown - firsts  # too few agents: the rest are re-deliveries
    spare = names[firsts:]
    timeline: list[tuple[float, NoticeSent]] = [
        (float(i), NoticeSent(0, name, primaries[name], "first")) for i, name in enumerate(names[:firsts])
    ]
    for _ in range(n_redeliveries):
        i = rng.randrange(firsts)
        original = timeline[i][1]
        later = i + rng.uniform(0.5, max(1.0, firsts / 4))
        timeline.append((later, NoticeSent(0, original.agent, original.instance, "redelivery")))
    for k in range(n_unknown):
        ghost = f"i-{rng.getrandbits(63) | 1 << 62:017x}"  # not an id moto has handed out
        owner = spare[k % len(spare)] if spare else rng.choice(names)
        timeline.append((rng.uniform(0, firsts), NoticeSent(0, owner, ghost, "unknown")))
    plan = [sent for _, sent in sorted(timeline, key=lambda t: t[0])]
    for n, sent in enumerate(plan):
        sent.n = n
    return plan


async def send_burst(
    api: str, tokens: Mapping[str, str], plan: list[NoticeSent], rate: float, concurrency: int, give_up: float
) -> float:
    """Each request at its time on a fixed schedule (open loop), at most ``concurrency`` in flight; a 5xx
    or no answer is sent again (the same report) after Retry-After (1 s without one), until ``give_up``
    seconds after its first attempt. Returns the seconds until the last final answer."""
    limit = asyncio.Semaphore(concurrency)

    async def deliver(http: aiohttp.ClientSession, sent: NoticeSent) -> None:
        report = notice_report(sent.instance, f"burst-{sent.n:05d}-{sent.instance}")
        while True:
            async with limit:
                started = time.monotonic()
                sent.sent_at = sent.sent_at or started
                try:
                    status, code, wait = await post_notice(http, api, sent.agent, tokens[sent.agent], report)
                except (TimeoutError, aiohttp.ClientError) as exc:
                    status, code, wait = 0, type(exc).__name__, None
                answered = time.monotonic()
            sent.answers.append(status)
            sent.outcome = code
            if sent.first_latency is None:
                sent.first_latency = answered - started
            if 0 < status < 500:
                sent.final_latency = answered - sent.sent_at
                return
            if answered - sent.sent_at > give_up:
                sent.error = f"gave up after {len(sent.answers)} attempts, the last: {status} {code}"
                return
            await asyncio.sleep(wait if wait is not None else 1.0)

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        start = time.monotonic()
        tasks = []
        for sent in plan:
            sent.due = start + sent.n / rate
            delay = sent.due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(deliver(http, sent)))
        await asyncio.gather(*tasks)
        return time.monotonic() - start


@dataclass
class BurstResult:
    plan: list[NoticeSent]
    rate: float
    seconds: float
    concurrency: int
    answered_s: float  # burst start -> the last final answer
    waited_s: float  # burst start -> the end of the wait for the failovers
    wait_timed_out: bool
    moved_at: list[float]  # per notified agent whose primary moved: seconds from the burst start
    notified: int
    lost: list[str]
    twice: list[str]
    rows: list[tuple[str, int, int]]


async def wait_failovers(
    watched: Watched, interrupted: Mapping[str, str], before: set[str], t0: float, within: float
) -> bool:
    """Until every notified agent's primary moved off the interrupted instance and its emergency switches
    opened since the burst are final (or ``within`` seconds). True when it timed out."""
    deadline = time.monotonic() + within
    last_report = time.monotonic()
    while True:
        moved = [n for n, old in interrupted.items() if watched.primary.get(n) not in (None, old)]
        open_ = [
            name
            for name, sw in watched.switches.items()
            if name not in before and sw.reason == "emergency" and sw.phase not in SWITCH_FINAL
        ]
        if len(moved) == len(interrupted) and not open_:
            return False
        if time.monotonic() > deadline:
            return True
        if time.monotonic() - last_report >= 30:
            last_report = time.monotonic()
            progress(
                f"  {last_report - t0:6.0f} s after the burst started: {len(moved)}/{len(interrupted)} "
                f"primaries moved, {len(open_)} emergency switches in flight"
            )
        await asyncio.sleep(1.0)


async def list_items(http: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await get_json(http, url)).get("items") or []
    return items


async def notice_burst(
    args: argparse.Namespace,
    http: aiohttp.ClientSession,
    api: str,
    kube_url: str,
    moto_url: str,
    stats_url: str,
    watched: Watched,
    regions: Sequence[str],
) -> BurstResult:
    """The burst, the wait for the failovers, and the checks (rows of check, failures, out of)."""
    import random

    rng = random.Random(args.notice_seed)
    bench_agents = {n: i for n, i in watched.primary.items() if n != CANARY and n in watched.tokens}
    switches_url = f"{kube_url}{GROUP_PATH}/switchrequests"
    before = {sw["metadata"]["name"] for sw in await list_items(http, switches_url)}
    launches_before = len((await get_json(http, stats_url + "?launches=1"))["launches"])
    total = round(args.notice_rate * args.notice_seconds)
    plan = plan_burst(bench_agents, total, args.notice_redeliveries, args.notice_unknown, rng)
    interrupted = {s.agent: s.instance for s in plan if s.kind == "first"}
    progress(f"notice burst: {len(plan)} requests at {args.notice_rate:g}/s ({len(interrupted)} agents)")
    t0 = time.monotonic()
    answered_s = await send_burst(
        api, watched.tokens, plan, args.notice_rate, args.notice_concurrency, args.notice_give_up
    )
    timed_out = await wait_failovers(watched, interrupted, before, t0, args.notice_wait)
    waited_s = time.monotonic() - t0

    # What the emulation and moto hold now (read afresh, not from the watches).
    agents = {a["metadata"]["name"]: a for a in await list_items(http, f"{kube_url}{GROUP_PATH}/spotagents")}
    switches = [sw for sw in await list_items(http, switches_url) if sw["metadata"]["name"] not in before]
    launches = (await get_json(http, stats_url + "?launches=1"))["launches"][launches_before:]
    instances: list[MotoInstance] = []
    for region in dict.fromkeys(regions):
        instances += await asyncio.to_thread(moto_instances, moto_url, region)

    rows: list[tuple[str, int, int]] = []

    def row(name: str, bad: list[str], out_of: int) -> None:
        rows.append((name, len(bad), out_of))
        for line in bad[:5]:
            progress(f"FAIL {name}: {line}")

    row(
        "requests answered (no 5xx or transport error at the end)",
        [f"{s.agent} {s.instance}: {s.error or s.final}" for s in plan if not 0 < s.final < 500],
        len(plan),
    )
    by_notice: dict[tuple[str, str], list[NoticeSent]] = {}
    for s in plan:
        if s.kind != "unknown":
            by_notice.setdefault((s.agent, s.instance), []).append(s)
    bad = []
    for (agent, instance), sends in by_notice.items():
        finals = Counter(f"{s.final} {s.outcome}" for s in sends)
        accepted = finals["202 accepted"]
        refused_first = any(a == 0 or a >= 500 for s in sends for a in s.answers)
        ok = set(finals) <= {"202 accepted", "202 duplicate"} and (
            accepted == 1 or (accepted == 0 and refused_first)  # accepted inside an attempt answered 503
        )
        if not ok:
            bad.append(f"{agent} {instance}: {dict(finals)}")
    row(
        "distinct notice accepted once (0 if its acceptance was answered 503), others duplicate",
        bad,
        len(by_notice),
    )
    ghosts = [s for s in plan if s.kind == "unknown"]
    row(
        "unknown instance answered 404 unknown_instance",
        [
            f"{s.agent} {s.instance}: {s.final} {s.outcome}"
            for s in ghosts
            if (s.final, s.outcome) != (404, "unknown_instance")
        ],
        len(ghosts),
    )

    emergencies: dict[str, list[str]] = {}
    for sw in switches:
        spec = sw.get("spec") or {}
        if spec.get("reason") == "emergency":
            emergencies.setdefault((spec.get("agentRef") or {}).get("name", ""), []).append(
                sw["metadata"]["name"]
            )
    launch_purposes: dict[str, list[str]] = {}
    for _, agent, purpose in launches:
        launch_purposes.setdefault(agent.rpartition("/")[2], []).append(purpose)
    running: dict[str, list[MotoInstance]] = {}
    for inst in instances:
        if inst.state in ("pending", "running") and inst.role == "primary":
            running.setdefault(inst.agent.rpartition("/")[2], []).append(inst)

    lost, twice, moved_at, primaries, switch_rows, launch_rows = [], [], [], [], [], []
    for name, old in sorted(interrupted.items()):
        status = (agents.get(name) or {}).get("status") or {}
        now_primary = (status.get("primary") or {}).get("instanceId")
        mine = emergencies.get(name, [])
        emergency_launches = [p for p in launch_purposes.get(name, []) if p in {f"switch/{m}" for m in mine}]
        alive = [i.instance_id for i in running.get(name, [])]
        if now_primary in (None, old):
            lost.append(f"{name}: status primary {now_primary}, interrupted {old}; switches {mine}")
        elif name in watched.primary_changed_at:
            moved_at.append(watched.primary_changed_at[name] - t0)
        if len(mine) > 1 or len(emergency_launches) > 1:
            twice.append(f"{name}: emergency switches {mine}, their launches {len(emergency_launches)}")
        if len(mine) != 1:
            switch_rows.append(f"{name}: {mine}")
        if len(emergency_launches) != 1:
            launch_rows.append(f"{name}: {launch_purposes.get(name, [])}")
        if len(alive) != 1 or alive[0] == old or alive[0] != now_primary:
            primaries.append(
                f"{name}: running primaries in moto {alive}, status {now_primary}, interrupted {old}"
            )
    row("lost: notified agent's primary (status) still the interrupted one", lost, len(interrupted))
    row("handled twice: more than one emergency switch or launch", twice, len(interrupted))
    row("notified agent: exactly one emergency SwitchRequest", switch_rows, len(interrupted))
    row("notified agent: exactly one launch for it (operator's call hook)", launch_rows, len(interrupted))
    row("notified agent: one running primary in moto, new, = status", primaries, len(interrupted))

    others = sorted(set(bench_agents) - set(interrupted))
    ghost_owners = {s.agent for s in ghosts} - set(interrupted)
    bad = [
        f"{name}: switches {emergencies.get(name, [])}, launches {launch_purposes.get(name, [])}"
        for name in sorted(ghost_owners)
        if emergencies.get(name) or launch_purposes.get(name)
    ]
    row("unknown-instance notice only: no emergency switch, no launch", bad, len(ghost_owners))
    bad = []
    for name in others:
        status = (agents.get(name) or {}).get("status") or {}
        now_primary = (status.get("primary") or {}).get("instanceId")
        alive = [i.instance_id for i in running.get(name, [])]
        if emergencies.get(name) or now_primary != bench_agents[name] or alive != [now_primary]:
            bad.append(
                f"{name}: switches {emergencies.get(name, [])}, "
                f"primary {bench_agents[name]} -> {now_primary}, moto {alive}"
            )
    row("agent without a notice: untouched (same primary, no emergency switch)", bad, len(others))
    pending = [
        f"{name}: {a.get('status', {}).get('pendingNotices')}"
        for name, a in agents.items()
        if name in interrupted and (a.get("status") or {}).get("pendingNotices")
    ]
    row("notified agent: no pending notice left in its status", pending, len(interrupted))
    return BurstResult(
        plan=plan,
        rate=args.notice_rate,
        seconds=args.notice_seconds,
        concurrency=args.notice_concurrency,
        answered_s=answered_s,
        waited_s=waited_s,
        wait_timed_out=timed_out,
        moved_at=sorted(moved_at),
        notified=len(interrupted),
        lost=lost,
        twice=twice,
        rows=rows,
    )


def report_burst(b: BurstResult) -> None:
    from latency import percentiles  # bench/latency.py, beside this script

    plan = b.plan
    kinds = Counter(s.kind for s in plan)
    print(
        f"Notice burst: {len(plan)} interruption notices at {b.rate:g}/s for {b.seconds:g} s "
        f"through the agent API ({kinds['first']} first notices for distinct agents' primaries, "
        f"{kinds['redelivery']} re-deliveries, {kinds['unknown']} unknown instances), "
        f"open loop, <= {b.concurrency} in flight"
    )
    lag = max((s.sent_at - s.due for s in plan), default=0.0)
    print(
        f"  sending lagged the schedule by at most {lag * 1000:.0f} ms; "
        f"last final answer {b.answered_s:.1f} s after the start"
    )

    def line(label: str, samples: list[float]) -> None:
        if not samples:
            print(f"  {label:<44}none")
            return
        p = percentiles(samples)
        print(
            f"  {label:<44}n {p['n']:>5}  p50 {p['p50'] * 1000:7.1f}  p95 {p['p95'] * 1000:7.1f}  "
            f"p99 {p['p99'] * 1000:7.1f}  max {p['max'] * 1000:7.1f} ms"
        )

    print("  latency")
    line("first attempt, every request", [s.first_latency for s in plan if s.first_latency is not None])
    line(
        "first attempt, first notices",
        [s.first_latency for s in plan if s.kind == "first" and s.first_latency is not None],
    )
    line(
        "first attempt, re-deliveries",
        [s.first_latency for s in plan if s.kind == "redelivery" and s.first_latency is not None],
    )
    line(
        "to the final 2xx (retries after 503 included)",
        [s.final_latency for s in plan if s.final_latency is not None and 200 <= s.final < 300],
    )
    first_answers = Counter(str(s.answers[0]) if s.answers else "none" for s in plan)
    all_answers = Counter(str(a) for s in plan for a in s.answers)
    finals = Counter(f"{s.final} {s.outcome}" for s in plan)
    retried = [s for s in plan if s.retried]
    print(f"  first answers by status    {dict(sorted(first_answers.items()))}")
    print(f"  all answers by status      {dict(sorted(all_answers.items()))}  (0: no answer)")
    print(f"  final answers              {dict(sorted(finals.items()))}")
    print(
        f"  retried after a 5xx: {len(retried)} requests, {sum(s.retried for s in retried)} retries "
        f"({sum(1 for s in plan for a in s.answers if a == 503)} answers 503)"
    )
    print()
    moved = b.moved_at
    last = f"{moved[-1]:.1f} s" if moved else "-"
    print(
        f"Failovers ({b.notified} notified agents; waited {b.waited_s:.0f} s"
        f"{', TIMED OUT' if b.wait_timed_out else ''}): lost {len(b.lost)}, handled twice {len(b.twice)}; "
        f"last primary moved {last} after the burst started"
    )
    if moved:
        p = percentiles(moved)
        print(
            f"  primary moved (s from the burst start): p50 {p['p50']:.1f}, p95 {p['p95']:.1f}, "
            f"p99 {p['p99']:.1f}, max {p['max']:.1f}"
        )
    print(f"  {'check':<84}{'failed':>8}{'of':>7}")
    for name, failed, out_of in b.rows:
        print(f"  {name:<84}{failed:>8}{out_of:>7}")
    print()


async def get_json(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as resp:
        return await resp.json()


async def wait_ready(http: aiohttp.ClientSession, health: str, operator: Child, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if operator.process.poll() is not None:
            raise RuntimeError(f"the operator exited with {operator.process.returncode}; see {operator.log}")
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(f"{health}/readyz") as resp:
                if resp.status == 200:
                    return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the operator was not ready within {within:.0f} s; see {operator.log}")


@dataclass
class Snapshot:
    at: float
    cpu: dict[str, float]
    stats: dict[str, Any]
    rss: int


async def after_observes(
    http: aiohttp.ClientSession, stats_url: str, children: Sequence[Child], count: int
) -> Snapshot:
    """A snapshot as soon as ``count`` observes have completed: windows start and end on cycle boundaries."""
    while True:
        if (await get_json(http, stats_url + "?brief=1"))["observes"] >= count:
            return await snapshot(http, stats_url, children)
        await asyncio.sleep(0.2)


async def snapshot(http: aiohttp.ClientSession, stats_url: str, children: Sequence[Child]) -> Snapshot:
    stats = await get_json(http, stats_url)
    cpu = {c.name: c.cpu() for c in children}
    cpu["driver (creates, watches, heartbeats)"] = time.process_time()
    operator = next(c for c in children if c.name == "operator")
    return Snapshot(time.monotonic(), cpu, stats, int(operator.ps.memory_info().rss))


@dataclass
class Result:
    agents: int
    regions: tuple[str, ...]
    settings: dict[str, Any]
    created_s: float
    primary_at: list[float]
    ready_at: list[float]
    timed_out: bool
    start: Snapshot
    ramp_end: Snapshot
    steady_start: Snapshot
    steady_end: Snapshot
    peak_rss: int
    fleet: Fleet
    not_ready_after_ready: int
    observe_seconds: list[float]
    profiles: list[Profile]
    canary: dict[str, Any] | None
    burst: BurstResult | None = None


@dataclass
class System:
    kube_url: str
    moto_url: str
    config: dict[str, Any]
    children: list[Child]

    @property
    def operator(self) -> Child:
        return next(c for c in self.children if c.name == "operator")


@contextlib.asynccontextmanager
async def system(args: argparse.Namespace, directory: Path) -> AsyncIterator[System]:
    """moto, the emulation and the operator, each in its own process; stopped when the block ends."""
    from spot_operator.sandbox.moto import MotoServer

    with MotoServer(start_timeout=240.0) as moto:
        assert moto.process is not None
        children = [Child("moto", moto.process, Path(os.devnull))]
        emulator, kube_url = start_emulator(directory)
        children.append(emulator)
        ports = {k: free_port() for k in ("health_port", "metrics_port", "agent_api_port", "stats_port")}
        config = {
            **ports,
            "kube_url": kube_url,
            "moto_url": moto.url,
            "observe_interval": args.observe_interval,
            "price_interval": args.price_interval,
            "decision_interval": args.decision_interval,
            "log_level": args.log_level,
        }
        operator = start_operator(directory, config)
        children.append(operator)
        try:
            yield System(kube_url, moto.url, config, children)
        finally:
            code = operator.stop()
            if code not in (0, None):
                progress(f"operator exited with {code}; log: {operator.log}")
            emulator.stop()


async def measure(args: argparse.Namespace, directory: Path) -> Result:
    from spot_operator.settings import Settings

    regions = tuple(r.strip() for r in args.regions.split(",") if r.strip())
    eip_agents = [n for n in range(args.agents) if args.eip_every and n % args.eip_every == 0]
    async with system(args, directory) as sys_:
        kube_url, children, config, operator = sys_.kube_url, sys_.children, sys_.config, sys_.operator
        eips: dict[int, str] = {}
        for region in regions:
            mine = [n for n in eip_agents if regions[n % len(regions)] == region]
            found = await asyncio.to_thread(allocate_addresses, sys_.moto_url, region, len(mine))
            eips.update(zip(mine, found, strict=True))
        health = f"http://127.0.0.1:{config['health_port']}"
        stats_url = f"http://127.0.0.1:{config['stats_port']}/stats"
        api = f"http://127.0.0.1:{config['agent_api_port']}"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
            await wait_ready(http, health, operator, within=240)
            watched = Watched()
            watches = [
                asyncio.create_task(watch(http, kube_url, f"{GROUP_PATH}/spotagents", {}, on_agent(watched))),
                asyncio.create_task(
                    watch(
                        http, kube_url, "/api/v1/secrets", {"labelSelector": TOKEN_LABEL}, on_secret(watched)
                    )
                ),
            ]
            if args.notice_rate > 0:
                # The switches' new instances get heartbeats too (their agents boot), so failovers finish.
                path = f"{GROUP_PATH}/switchrequests"
                watches.append(asyncio.create_task(watch(http, kube_url, path, {}, on_switch(watched))))
            fleet = Fleet(api, watched, args.heartbeat_interval, args.heartbeat_concurrency)
            fleet_task = asyncio.create_task(fleet.run())
            await asyncio.sleep(1.0)  # the watches are open
            agents_url = f"{kube_url}{GROUP_PATH}/namespaces/{NAMESPACE}/spotagents"
            if args.notice_after > 0:
                # A Ready agent with an Elastic IP, to be interrupted while the burst is under way.
                (canary_eip,) = await asyncio.to_thread(allocate_addresses, sys_.moto_url, regions[0], 1)
                async with http.post(agents_url, json=manifest(CANARY, 0, regions[0], canary_eip)) as resp:
                    assert resp.status == 201, await resp.text()
                ready_by = time.monotonic() + 300
                while not (watched.canary and watched.canary[-1][2]):
                    if time.monotonic() > ready_by:
                        raise RuntimeError(f"the canary agent was not Ready within 300 s; see {operator.log}")
                    await asyncio.sleep(0.25)
            start = await snapshot(http, stats_url, children)
            pid = operator.process.pid
            profiles = [Profile.start(args.py_spy, pid, "ramp", directory)]
            peak = start.rss
            limit = asyncio.Semaphore(args.create_concurrency)

            async def create(n: int) -> None:
                body = manifest(f"bench-{n:05d}", n, regions[n % len(regions)], eips.get(n))
                async with limit, http.post(agents_url, json=body) as resp:
                    if resp.status != 201:
                        raise RuntimeError(f"create {n}: {resp.status} {await resp.text()}")
                watched.created[body["metadata"]["name"]] = time.monotonic()

            notice: dict[str, Any] = {}

            async def interrupt_canary() -> None:
                await asyncio.sleep(args.notice_after)
                instance = watched.primary[CANARY]
                notice.update(at=time.time(), instance=instance, after=time.monotonic() - watched.t0)
                notice["status"] = await interrupt(http, api, CANARY, watched.tokens[CANARY], instance)

            watched.t0 = time.monotonic()
            notifier = asyncio.create_task(interrupt_canary()) if args.notice_after > 0 else None
            await asyncio.gather(*(create(n) for n in range(args.agents)))
            created_s = time.monotonic() - watched.t0
            deadline = watched.t0 + args.timeout
            last_report = 0.0
            while len(watched.ready_at) < args.agents and time.monotonic() < deadline:
                if operator.process.poll() is not None:
                    raise RuntimeError(f"the operator exited; see {operator.log}")
                peak = max(peak, operator.ps.memory_info().rss)
                if time.monotonic() - last_report >= 30:
                    last_report = time.monotonic()
                    progress(
                        f"  {last_report - watched.t0:6.0f} s: {len(watched.primary)} primaries, "
                        f"{len(watched.ready_at)} Ready, {fleet.sent} heartbeats"
                    )
                await asyncio.sleep(0.25)
            timed_out = len(watched.ready_at) < args.agents
            profiles[-1].stop()
            profiles.append(Profile.start(args.py_spy, pid, "steady", directory))
            ramp_end = await snapshot(http, stats_url, children)
            # The steady window runs from the end of one observe cycle to the end of a later one.
            per_cycle = len(regions)
            steady_start = await after_observes(
                http, stats_url, children, ramp_end.stats["observes"] + per_cycle
            )
            steady_until = time.monotonic() + args.steady_seconds
            while time.monotonic() < steady_until:
                peak = max(peak, operator.ps.memory_info().rss)
                await asyncio.sleep(1.0)
            observed = (await get_json(http, stats_url + "?brief=1"))["observes"]
            steady_end = await after_observes(http, stats_url, children, observed + per_cycle)
            profiles[-1].stop()
            peak = max(peak, steady_end.rss, steady_end.stats["max_rss_kib"] * 1024)
            if notifier is not None:
                await notifier  # long done: the notice goes out early in the ramp
            burst = None
            if args.notice_rate > 0 and not timed_out:
                burst = await notice_burst(
                    args, http, api, kube_url, sys_.moto_url, stats_url, watched, regions
                )
            elif args.notice_rate > 0:
                progress("notice burst skipped: not every agent became Ready")
            for task in [fleet_task, *watches]:
                task.cancel()
            await asyncio.gather(fleet_task, *watches, return_exceptions=True)
    defaults = Settings()
    return Result(
        agents=args.agents,
        regions=regions,
        settings={
            "observe s": args.observe_interval,
            "prices s": args.price_interval,
            "decisions s": args.decision_interval,
            "kopf timer s": 60,
            "heartbeat s": args.heartbeat_interval,
            "defaults": (defaults.observe_interval_seconds, defaults.price_interval_seconds),
        },
        created_s=created_s,
        primary_at=sorted(t - watched.t0 for t in watched.primary_at.values()),
        ready_at=sorted(t - watched.t0 for t in watched.ready_at.values()),
        timed_out=timed_out,
        start=start,
        ramp_end=ramp_end,
        steady_start=steady_start,
        steady_end=steady_end,
        peak_rss=peak,
        fleet=fleet,
        not_ready_after_ready=watched.not_ready_after_ready,
        observe_seconds=steady_end.stats["observe_seconds"],
        profiles=profiles if args.py_spy else [],
        canary=canary_summary(notice, steady_end.stats["canary_calls"]) if notice else None,
        burst=burst,
    )


@dataclass
class Profile:
    """``py-spy record`` of the operator over one window (collapsed stacks, active samples only)."""

    name: str
    path: Path
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(cls, py_spy: str | None, pid: int, name: str, directory: Path) -> Profile:
        profile = cls(name, directory / f"operator-{name}.txt")
        if py_spy:
            command = [py_spy, "record", "-p", str(pid), "-r", "50", "-f", "raw", "-o", str(profile.path)]
            profile.process = subprocess.Popen(
                [*command, "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        return profile

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def top(self, count: int = 12) -> list[tuple[float, str]]:
        """The frames with the most samples in them (inclusive), as shares of all samples."""
        if not self.path.exists():
            return []
        inclusive: Counter[str] = Counter()
        total = 0
        for line in self.path.read_text().splitlines():
            stack, _, samples = line.rpartition(" ")
            n = int(samples)
            total += n
            for frame in set(stack.split(";")):
                if "spot_operator/" in frame or "kopf/" in frame or "aiohttp/" in frame:
                    inclusive[frame] += n
        return [(n / total, frame) for frame, n in inclusive.most_common(count)] if total else []


# --- printing ----------------------------------------------------------------------------------------------


def at_share(times: Sequence[float], total: int, share: float) -> str:
    need = math.ceil(total * share)
    return f"{times[need - 1]:.1f}" if len(times) >= need else "-"


def percentile(ordered: Sequence[float], q: float) -> float:
    return ordered[min(int(len(ordered) * q), len(ordered) - 1)]


def calls_delta(a: Snapshot, b: Snapshot) -> dict[str, Counter[str]]:
    out: dict[str, Counter[str]] = {}
    for why, actions in b.stats["calls"].items():
        before = a.stats["calls"].get(why, {})
        delta = Counter({k: n - before.get(k, 0) for k, n in actions.items()})
        out[why] = Counter({k: n for k, n in delta.items() if n})
    return out


def report(r: Result) -> None:
    n = r.agents
    s = r.settings
    print()
    print(
        f"spot-optimizer reconcile benchmark: {n} SpotAgents created at once, {len(r.regions)} region(s) "
        f"({', '.join(r.regions)}), auto-switch, 2 instance types x 2 zones each, EIP on every 4th"
    )
    print(
        f"intervals: observe {s['observe s']:g} s, prices {s['prices s']:g} s, "
        f"decisions {s['decisions s']:g} s, kopf timer {s['kopf timer s']} s, "
        f"heartbeats {s['heartbeat s']:g} s per agent"
    )
    print()
    print("Time from the first create (s)")
    print(f"  {'creates accepted':<28}{r.created_s:>8.1f}")
    for label, times in (("primary in status", r.primary_at), ("Ready", r.ready_at)):
        for share in (0.5, 0.9, 1.0):
            print(f"  {f'{label} {share:.0%}':<28}{at_share(times, n, share):>8}")
    if r.timed_out:
        print(f"  TIMED OUT: {len(r.ready_at)}/{n} Ready")
    print()

    start, ramp_end, steady_start, steady_end = r.start, r.ramp_end, r.steady_start, r.steady_end
    ramp = ramp_end.at - start.at
    steady = steady_end.at - steady_start.at
    print(
        f"CPU seconds by process (ramp: the {ramp:.0f} s until all Ready; steady: {steady:.0f} s "
        f"of whole observe cycles, starting {steady_start.at - ramp_end.at:.0f} s later)"
    )
    print(f"  {'process':<40}{'ramp':>10}{'steady /min':>14}")
    for name in start.cpu:
        ramp_cpu = ramp_end.cpu[name] - start.cpu[name]
        steady_cpu = steady_end.cpu[name] - steady_start.cpu[name]
        print(f"  {name:<40}{ramp_cpu:>10.1f}{steady_cpu / steady * 60:>14.2f}")
    print(
        "  (operator = one process: kopf, the reconciles, the agent API, the loops and the boto3 worker "
        "threads;\n   moto and the emulation are separate processes; the driver plays the agents)"
    )
    print()
    print("Operator memory")
    print(f"  {'peak RSS':<28}{r.peak_rss / 2**20:>8.0f} MiB")
    print(f"  {'RSS at the end':<28}{steady_end.rss / 2**20:>8.0f} MiB")
    print(f"  {'RSS before the burst':<28}{start.rss / 2**20:>8.0f} MiB")
    print()

    regions = len(r.regions)
    ramp_calls = calls_delta(start, ramp_end)
    steady_calls = calls_delta(steady_start, steady_end)
    cycles = (steady_end.stats["observes"] - steady_start.stats["observes"]) / regions
    ramp_cycles = (ramp_end.stats["observes"] - start.stats["observes"]) / regions
    print(f"AWS calls (ramp: {ramp_cycles:g} observe cycles; steady: {cycles:g} observe cycles)")
    print(f"  {'made by':<12}{'operation':<34}{'ramp':>8}{'per agent':>11}{'steady':>8}{'per cycle':>11}")
    for why in sorted(set(ramp_calls) | set(steady_calls)):
        for op in sorted(set(ramp_calls.get(why, {})) | set(steady_calls.get(why, {}))):
            a = ramp_calls.get(why, Counter())[op]
            b = steady_calls.get(why, Counter())[op]
            per_cycle = f"{b / cycles:.2f}" if why == "observe" and cycles else ""
            print(f"  {why:<12}{op:<34}{a:>8}{a / n:>11.2f}{b:>8}{per_cycle:>11}")
    print("  (DescribeInstances pages: one per 1,000 instances, terminated ones included)")
    took = r.observe_seconds
    windows = {
        "ramp": took[start.stats["observes"] : ramp_end.stats["observes"]],
        "steady": took[steady_start.stats["observes"] : steady_end.stats["observes"]],
    }
    for label, seconds in windows.items():
        if seconds:
            print(
                f"  one observe (describe_owned), {label}: "
                f"{min(seconds):.1f}-{max(seconds):.1f} s (moto's time)"
            )
    for pool, name in (("pool", "bulk"), ("urgent", "urgent")):
        waits = steady_end.stats[f"{pool}_waits"]
        marks = [len(x.stats[f"{pool}_waits"]) for x in (start, ramp_end, steady_start, steady_end)]
        workers = start.stats[f"{pool}_workers"]
        print(f"  time queued in the operator's {name} AWS pool before being sent ({workers} threads):")
        for label, window in (("ramp", waits[marks[0] : marks[1]]), ("steady", waits[marks[2] : marks[3]])):
            if window:
                w = sorted(window)
                print(
                    f"    {label:<7}{len(w):>6} calls: p50 {percentile(w, 0.5):.2f} s, "
                    f"p90 {percentile(w, 0.9):.2f} s, max {w[-1]:.2f} s"
                )
    print()

    f = r.fleet
    print("Heartbeats (the driver playing the on-instance agents)")
    print(f"  accepted {f.sent}; refused {sum(f.refused.values())} {dict(f.refused) or ''}")
    if f.latency:
        lat = sorted(f.latency)
        p50, p99 = percentile(lat, 0.5) * 1000, percentile(lat, 0.99) * 1000
        print(f"  latency p50 {p50:.1f} ms, p99 {p99:.1f} ms (<= {f.concurrency} in flight, keep-alive pool)")
    print()
    if r.canary is not None:
        c = r.canary

        def sec(value: float | None) -> str:
            return f"{value:8.1f}" if value is not None else "   never"

        first = c["first_call"]
        print(f"Interruption notice for one more agent, Ready before the burst, {c['after']:.0f} s into it")
        print(f"  {'answered (HTTP)':<44}{c['status']:>8}")
        if first is not None:
            print(f"  {'first AWS call for the replacement sent':<44}{sec(first[0])} s  ({first[1]})")
        print(f"  {'replacement RunInstances sent':<44}{sec(c['run_instances'])} s")
        print("  (bench/failover.py's target for that RunInstances: p99 <= 0.3 s, on an idle operator)")
        print()
    if r.burst is not None:
        report_burst(r.burst)
    st = steady_end.stats
    reconciles = st["reconciles"] - steady_start.stats["reconciles"]
    print(
        f"Operator: {st['agents']} agents in memory, {st['tasks']} asyncio tasks; "
        f"steady-state reconciles {reconciles / steady * 60:.0f}/min; "
        f"Ready -> not Ready transitions {r.not_ready_after_ready}"
    )
    for profile in r.profiles:
        print()
        print(f"py-spy, operator, {profile.name} (share of active samples with the frame on the stack)")
        for share, frame in profile.top():
            print(f"  {share:6.1%}  {frame[:150]}")
        print(f"  stacks: {profile.path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--steady-seconds", type=float, default=120.0)
    parser.add_argument("--regions", default="us-east-1", help="comma-separated; agents round-robin")
    parser.add_argument(
        "--eip-every", type=int, default=4, help="every Nth agent has an Elastic IP (0: none)"
    )
    parser.add_argument("--observe-interval", type=float, default=30.0, help="production default: 30")
    parser.add_argument("--price-interval", type=float, default=300.0, help="production default: 300")
    parser.add_argument("--decision-interval", type=float, default=300.0, help="production default: 300")
    parser.add_argument("--heartbeat-interval", type=float, default=30.0, help="spot-agent's default: 30")
    parser.add_argument(
        "--notice-after",
        type=float,
        default=20.0,
        help="seconds into the burst to interrupt an agent made Ready before it (0: none)",
    )
    parser.add_argument(
        "--notice-rate",
        type=float,
        default=0.0,
        help="after the steady state: interruption notices per second through the agent API (0: none)",
    )
    parser.add_argument("--notice-seconds", type=float, default=10.0, help="how long the notice burst lasts")
    parser.add_argument(
        "--notice-redeliveries", type=float, default=0.10, help="share of re-deliveries of earlier notices"
    )
    parser.add_argument(
        "--notice-unknown", type=float, default=0.02, help="share of notices for unknown instances"
    )
    parser.add_argument("--notice-concurrency", type=int, default=500, help="notice requests in flight")
    parser.add_argument(
        "--notice-give-up",
        type=float,
        default=300.0,
        help="stop retrying a notice this long after its first try",
    )
    parser.add_argument(
        "--notice-wait", type=float, default=600.0, help="wait at most this long for the failovers"
    )
    parser.add_argument("--notice-seed", type=int, default=1)
    parser.add_argument("--heartbeat-concurrency", type=int, default=32)
    parser.add_argument("--create-concurrency", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=3600.0, help="give up waiting for Ready after this")
    parser.add_argument(
        "--py-spy", help="path to py-spy: profile the operator in the ramp and the steady state"
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--operator-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.operator_child:
        raise SystemExit(operator_child(json.loads(args.operator_child)))
    directory = Path(tempfile.mkdtemp(prefix="bench-reconcile-"))
    progress(f"logs: {directory}")
    result = asyncio.run(measure(args, directory))
    report(result)


if __name__ == "__main__":
    main()
