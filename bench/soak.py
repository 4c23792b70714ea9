"""Load and soak: many SpotAgents, a burst of interruption notices through the agent API, then a soak.

In-process, on the operator's real code (Operator, Reconciler, Actuator, the aiohttp agent API with its
tokens) over the in-memory cloud ports: moto is too slow for a thousand instances, and the real AWS
path is measured by ``bench/failover.py`` and ``bench/aws_calls.py``. The instances' agents are
simulated by HTTP requests.

1. ``--agents`` SpotAgents (default 1,000; alternately manual-replica and off) are brought to Ready.
2. Burst: ``--rate`` requests per second (default 100) for ``--burst-seconds`` (default 10), sent open
   loop (each at its time, without waiting for earlier answers). The requests are first notices for
   distinct agents' primaries, a ``--duplicates`` share of exact re-deliveries of earlier ones with other
   idempotency keys (as SQS re-delivers), and an ``--unknown`` share naming instances nobody owns.
   Per-request latency is printed (p50/p95/p99/max). After settling (AWS reclaims the interrupted
   instances, observe and reconcile until every switch is final) the bench checks: each distinct notice
   answered ``accepted`` exactly once and ``duplicate`` otherwise, unknown instances 404, every notice
   in the operator's memory, exactly one emergency switch per interrupted agent and none elsewhere, and
   every agent with exactly one live primary (``InMemoryEc2.live``) that holds its Elastic IP.
3. Soak: ``--soak-seconds`` (default 600) of steady work: every live instance heartbeats over HTTP
   every ``--heartbeat-every`` seconds (in batches), an observe cycle every ``--observe-every`` seconds,
   every agent kicked for a reconcile every ``--reconcile-every`` seconds. RSS is sampled every
   ``--sample-every`` seconds; the samples, first/last/peak and the growth per minute over the second
   half are printed. The in-memory fakes' call logs (``InMemoryEc2.calls``, ``InMemoryTraffic.calls``,
   ``InMemoryObjects.events``) are test recorders that grow by design: they are emptied at each sample
   so that the RSS is the operator's, and their sizes are printed.

    PYTHONPATH=operator:agent:. python bench/soak.py [--agents 1000] [--soak-seconds 600]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import random
import statistics
import sys
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import psutil

from latency import percentiles  # bench/latency.py, beside this script
from spot_operator.agent_api.app import create_app
from spot_operator.agent_api.server import AgentApiServer
from spot_operator.agent_api.tokens import TokenStore
from spot_operator.api.switchrequest import SwitchReason
from spot_operator.inmemory import InMemoryEc2, InMemoryObjects, InMemoryTraffic
from spot_operator.planning import Pool, Role
from spot_operator.ports import PriceObservation
from spot_operator.runtime.agent_sink import OperatorSink
from spot_operator.runtime.loops import observe_cycle
from spot_operator.runtime.operator import Operator
from spot_operator.state import Heartbeat

REGION = "us-east-1"
NAMESPACE = "bench"
PRICES = {
    "m5.large.us-east-1a": 0.040,
    "m5.large.us-east-1b": 0.035,
    "m5a.large.us-east-1a": 0.030,
    "m5a.large.us-east-1b": 0.045,
}
ON_DEMAND = {"m5.large": 0.096, "m5a.large": 0.086}


class BenchClock:
    """Wall time plus an offset the bench moves forward (to let set-up and settling pass quickly)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@dataclass
class Sent:
    """One notice request and what came of it."""

    agent: str
    instance_id: str
    kind: str  # first | duplicate | unknown
    status: int = 0
    outcome: str = ""
    latency: float = 0.0
    error: str = ""


@dataclass
class Bench:
    op: Operator
    ec2: InMemoryEc2
    traffic: InMemoryTraffic
    objects: InMemoryObjects
    clock: BenchClock
    api: AgentApiServer
    tokens: dict[str, str] = field(default_factory=dict)
    eips: dict[str, str] = field(default_factory=dict)
    uids: dict[str, str] = field(default_factory=dict)
    # Operator.on_notice calls per instance: what the history store would record
    recorded: Counter[str] = field(default_factory=Counter)


def agent_body(n: int, mode: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"agent-{n:04d}",
            "namespace": NAMESPACE,
            "uid": f"uid-{n:04d}",
            "generation": 1,
        },
        "spec": {
            "region": REGION,
            "launchTemplate": {"name": "bench"},
            "instanceTypes": ["m5.large", "m5a.large"],
            "zones": ["us-east-1a", "us-east-1b"],
            "mode": mode,
            "traffic": {"elasticIpAllocationId": f"eipalloc-{n:017x}"},
            "termination": {"terminateWaitSeconds": 0},
            "policy": {"onDemandFallback": True},
        },
    }


def rss_mib() -> float:
    return float(psutil.Process().memory_info().rss) / 2**20


def live_primaries(bench: Bench, key: str) -> list[str]:
    return [i.instance_id for i in bench.ec2.live(bench.uids[key]) if i.role is Role.PRIMARY]


def is_ready(bench: Bench, key: str) -> bool:
    """Serving (the Ready condition: an off agent's replacement on on-demand is Degraded, yet serving),
    no switch in flight, and a manual-replica agent's standby Ready."""
    state = bench.op.agents[key]
    serving = any(c.type == "Ready" and c.status.value == "True" for c in state.status.conditions or [])
    if not serving or any(not s.final for s in state.switches.values()):
        return False
    if state.spec.mode.value == "manual-replica":
        return any(r.phase is not None and r.phase.value == "Ready" for r in state.replicas.values())
    return True


async def settle_all(bench: Bench, within_rounds: int, label: str) -> list[str]:
    """Observe, heartbeat every live instance (in memory, not timed), reconcile; until all are Ready."""
    op = bench.op
    waiting = list(op.agents)
    for _ in range(within_rounds):
        await observe_cycle(op)
        await op.settle(within=120)
        for key in waiting:
            for inst in list(op.agents[key].instances.values()):
                if inst.live:
                    op.record_heartbeat(key, inst.instance_id, Heartbeat(op.now()))
        for key in waiting:
            op.kick(key)
        await op.settle(within=120)
        waiting = [key for key in waiting if not is_ready(bench, key)]
        if not waiting:
            return []
        bench.clock.advance(5)
    print(f"{label}: {len(waiting)} agents not Ready, e.g. {waiting[:3]}", file=sys.stderr)
    return waiting


async def post_notice(http: aiohttp.ClientSession, bench: Bench, sent: Sent, n: int) -> None:
    name = sent.agent.split("/")[1]
    body = {
        "instanceId": sent.instance_id,
        "kind": "interruption",
        "action": "terminate",
        "noticeTime": bench.clock.now().isoformat(),
        "idempotencyKey": f"soak-{n}-{sent.instance_id}",
    }
    started = time.perf_counter()
    try:
        async with http.post(
            f"{bench.api.url}/v1/namespaces/{NAMESPACE}/agents/{name}/notices",
            json=body,
            headers={"Authorization": f"Bearer {bench.tokens[sent.agent]}"},
        ) as resp:
            sent.status = resp.status
            answer = await resp.json()
            sent.outcome = str(answer.get("status") or answer.get("error") or "")
    except Exception as exc:  # counted as a failure in the checks
        sent.error = repr(exc)
    sent.latency = time.perf_counter() - started


def schedule(bench: Bench, args: argparse.Namespace, rng: random.Random) -> list[Sent]:
    """The burst's requests in sending order: each re-delivery comes after its original."""
    total = round(args.rate * args.burst_seconds)
    unknown = round(total * args.unknown)
    duplicates = round(total * args.duplicates)
    keys = sorted(bench.op.agents)
    firsts = min(len(keys), total - unknown - duplicates)
    chosen = rng.sample(keys, firsts)
    timeline: list[tuple[float, Sent]] = [
        (float(i), Sent(key, live_primaries(bench, key)[0], "first")) for i, key in enumerate(chosen)
    ]
    for _ in range(duplicates):
        i = rng.randrange(firsts)
        original = timeline[i][1]
        later = i + rng.uniform(0.5, max(1.0, firsts / 4))
        timeline.append((later, Sent(original.agent, original.instance_id, "duplicate")))
    for _ in range(unknown):
        ghost = f"i-{rng.getrandbits(63) | 1 << 62:017x}"  # ids the in-memory EC2 never hands out
        timeline.append((rng.uniform(0, firsts), Sent(rng.choice(keys), ghost, "unknown")))
    return [sent for _, sent in sorted(timeline, key=lambda t: t[0])]


async def setup(args: argparse.Namespace) -> Bench:
    clock = BenchClock()
    ec2, traffic, objects = InMemoryEc2(clock), InMemoryTraffic(), InMemoryObjects(clock)
    op = Operator(ec2, traffic, objects, now=clock.now, tokens=TokenStore())
    op.book.add_spot(PriceObservation(Pool.parse(n), clock.now(), p) for n, p in PRICES.items())
    op.book.on_demand[REGION] = dict(ON_DEMAND)
    assert op.tokens is not None
    api = AgentApiServer(create_app(op.tokens, OperatorSink(op), clock=clock.now), "127.0.0.1", 0)
    await api.start()
    bench = Bench(op, ec2, traffic, objects, clock, api)
    op.on_notice = lambda state, notice: bench.recorded.update([notice.instance_id])
    for n in range(args.agents):
        mode = "manual-replica" if n % 2 == 0 else "off"
        body = agent_body(n, mode)
        state = op.upsert_agent(body)
        bench.tokens[state.key] = op.tokens.issue(state.key)
        bench.eips[state.key] = body["spec"]["traffic"]["elasticIpAllocationId"]
        bench.uids[state.key] = state.ref.uid
    return bench


async def burst(bench: Bench, plan: list[Sent], rate: float) -> float:
    """Send ``plan`` open loop at ``rate`` requests per second; the seconds it took to send and answer."""
    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(limit=0)  # open loop: no client-side queueing in the latency
    async with aiohttp.ClientSession(connector=connector) as http:
        started = loop.time()
        tasks = []
        for n, sent in enumerate(plan):
            delay = started + n / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post_notice(http, bench, sent, n)))
        await asyncio.gather(*tasks)
        return loop.time() - started


def reclaim_interrupted(bench: Bench, plan: list[Sent]) -> int:
    """What AWS does at the end of the two-minute warning: the interrupted instances go away."""
    gone = 0
    live = {i.instance_id for i in bench.ec2.live()}
    for sent in plan:
        if sent.kind == "first" and sent.instance_id in live:
            bench.ec2.reclaim(sent.instance_id)
            live.discard(sent.instance_id)
            gone += 1
    return gone


def check(bench: Bench, plan: list[Sent]) -> list[tuple[str, int, int]]:
    """(check, failures, out of) rows; every failure is also printed to stderr."""
    rows: list[tuple[str, int, int]] = []

    def row(name: str, bad: list[str], total: int) -> None:
        rows.append((name, len(bad), total))
        for line in bad[:5]:
            print(f"FAIL {name}: {line}", file=sys.stderr)

    transport = [f"{s.instance_id}: {s.error}" for s in plan if s.error]
    row("requests answered (no transport error)", transport, len(plan))
    by_instance: dict[str, list[Sent]] = {}
    for sent in plan:
        if sent.kind != "unknown":
            by_instance.setdefault(sent.instance_id, []).append(sent)
    bad = []
    for instance_id, sends in by_instance.items():
        outcomes = Counter((s.status, s.outcome) for s in sends)
        want = Counter({(202, "accepted"): 1, (202, "duplicate"): len(sends) - 1}) - Counter()
        if outcomes != want:
            bad.append(f"{instance_id}: {dict(outcomes)}")
    row("distinct notice accepted once, re-deliveries duplicate", bad, len(by_instance))
    late = [s for s in plan if s.kind == "duplicate" and s.outcome == "accepted"]
    row(
        "  of which: re-delivery answered accepted again",
        [s.instance_id for s in late],
        sum(1 for s in plan if s.kind == "duplicate"),
    )
    bad = [f"{i}: {bench.recorded[i]} times" for i in by_instance if bench.recorded[i] != 1]
    row("on_notice (history record) once per distinct notice", bad, len(by_instance))
    ghosts = [s for s in plan if s.kind == "unknown"]
    bad = [
        f"{s.instance_id}: {s.status} {s.outcome}"
        for s in ghosts
        if (s.status, s.outcome) != (404, "unknown_instance")
    ]
    row("unknown instance answered 404", bad, len(ghosts))

    interrupted = {s.agent: s.instance_id for s in plan if s.kind == "first"}
    lost, switches, primaries, serving = [], [], [], []
    for key, state in bench.op.agents.items():
        old = interrupted.get(key)
        if old is not None and bench.recorded[old] == 0:
            lost.append(f"{key}: notice for {old} never recorded by the operator")
        emergencies = [s for s in state.switches.values() if s.spec.reason is SwitchReason.EMERGENCY]
        if len(emergencies) != (1 if old is not None else 0):
            switches.append(f"{key}: {len(emergencies)} emergency switches (interrupted: {old is not None})")
        alive = live_primaries(bench, key)
        if len(alive) != 1 or alive[0] == old:
            primaries.append(f"{key}: live primaries {alive}, interrupted {old}")
        elif bench.traffic.pointing.get(bench.eips[key]) != alive[0]:
            serving.append(f"{key}: EIP at {bench.traffic.pointing.get(bench.eips[key])}, primary {alive[0]}")
    row("no lost notice (recorded by the operator)", lost, len(interrupted))
    row("emergency switches: 1 per interrupted agent, 0 elsewhere", switches, len(bench.op.agents))
    row("exactly one live primary (a new one if interrupted)", primaries, len(bench.op.agents))
    row("the Elastic IP on that primary", serving, len(bench.op.agents))
    return rows


async def heartbeat_round(
    http: aiohttp.ClientSession, bench: Bench, batch: int, latencies: list[float]
) -> int:
    """One heartbeat per live instance, ``batch`` requests at a time; the count of non-200 answers."""
    targets = [
        (key, inst.instance_id)
        for key, state in bench.op.agents.items()
        for inst in state.instances.values()
        if inst.live
    ]
    failures = 0

    async def one(key: str, instance_id: str) -> None:
        nonlocal failures
        body = {
            "instanceId": instance_id,
            "agentVersion": "0.0.0-bench",
            "health": "ok",
            "syncProgress": 100,
            "sentAt": bench.clock.now().isoformat(),
            "idempotencyKey": f"hb-{instance_id}-{time.monotonic_ns()}",
        }
        started = time.perf_counter()
        try:
            async with http.post(
                f"{bench.api.url}/v1/namespaces/{NAMESPACE}/agents/{key.split('/')[1]}/heartbeat",
                json=body,
                headers={"Authorization": f"Bearer {bench.tokens[key]}"},
            ) as resp:
                await resp.read()
                failures += resp.status != 200
        except Exception:
            failures += 1
        latencies.append(time.perf_counter() - started)

    for at in range(0, len(targets), batch):
        await asyncio.gather(*(one(k, i) for k, i in targets[at : at + batch]))
    return failures


class Reservoir:
    """A uniform sample of the heartbeat latencies in preallocated doubles: the bench must not grow."""

    def __init__(self, rng: random.Random, size: int = 50_000) -> None:
        self.rng = rng
        self.kept = array("d", bytes(8 * size))
        self.seen = 0

    def add(self, values: list[float]) -> None:
        for value in values:
            at = self.seen if self.seen < len(self.kept) else self.rng.randrange(self.seen + 1)
            if at < len(self.kept):
                self.kept[at] = value
            self.seen += 1


@dataclass
class SoakResult:
    samples: list[tuple[float, float, int]]  # seconds since start, RSS MiB, fake call-log entries emptied
    reservoir: Reservoir
    heartbeat_failures: int
    rounds: int
    late_rounds: int
    observes: int
    reconciles: int


async def soak(bench: Bench, args: argparse.Namespace) -> SoakResult:
    loop = asyncio.get_running_loop()
    start = loop.time()
    end = start + args.soak_seconds
    result = SoakResult([], Reservoir(random.Random(args.seed)), 0, 0, 0, 0, 0)
    latencies: list[float] = []

    def sample() -> None:
        emptied = len(bench.ec2.calls) + len(bench.traffic.calls) + len(bench.objects.events)
        bench.ec2.reset_calls()
        bench.traffic.calls.clear()
        bench.objects.events.clear()
        result.samples.append((loop.time() - start, rss_mib(), emptied))

    async def heartbeats() -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=args.batch)) as http:
            while loop.time() < end:
                began = loop.time()
                result.heartbeat_failures += await heartbeat_round(http, bench, args.batch, latencies)
                result.rounds += 1
                spent = loop.time() - began
                result.late_rounds += spent > args.heartbeat_every
                result.reservoir.add(latencies)
                latencies.clear()
                await asyncio.sleep(max(0.0, args.heartbeat_every - spent))

    async def control() -> None:
        next_observe = next_reconcile = start
        while loop.time() < end:
            now = loop.time()
            if now >= next_observe:
                await observe_cycle(bench.op)
                result.observes += 1
                next_observe += args.observe_every
            if now >= next_reconcile:
                for key in list(bench.op.agents):
                    bench.op.kick(key)
                result.reconciles += len(bench.op.agents)
                next_reconcile += args.reconcile_every
            await asyncio.sleep(max(0.0, min(next_observe, next_reconcile, end) - loop.time()))

    async def sampler() -> None:
        while loop.time() < end:
            sample()
            await asyncio.sleep(min(args.sample_every, max(0.0, end - loop.time())))
        sample()

    await asyncio.gather(heartbeats(), control(), sampler())
    await bench.op.settle(within=120)
    return result


def print_soak(result: SoakResult, agents: int) -> None:
    print("\nRSS samples (s, MiB, fake call-log entries emptied since the last sample):")
    for at, rss, emptied in result.samples:
        print(f"  {at:7.1f} s {rss:9.1f} MiB {emptied:9d}")
    rss = [r for _, r, _ in result.samples]
    half = [(t, r) for t, r, _ in result.samples if t >= result.samples[-1][0] / 2]
    slope = 0.0
    if len(half) >= 2:
        ts, rs = [t for t, _ in half], [r for _, r in half]
        slope = statistics.linear_regression(ts, rs).slope * 60
    kept = list(result.reservoir.kept[: min(result.reservoir.seen, len(result.reservoir.kept))])
    hb = percentiles(kept) if kept else None
    print("\nsoak")
    print(f"  {'agents':<44}{agents:>12}")
    print(
        f"  {'heartbeat rounds (late: over the interval)':<44}{result.rounds:>12} ({result.late_rounds} late)"
    )
    print(f"  {'heartbeats sent (non-200)':<44}{result.reservoir.seen:>12} ({result.heartbeat_failures})")
    if hb is not None:
        print(
            f"  {'heartbeat latency p50/p99/max ms':<44}{hb['p50'] * 1e3:>8.1f}"
            f" / {hb['p99'] * 1e3:.1f} / {hb['max'] * 1e3:.1f}"
        )
    print(f"  {'observe cycles / reconciles asked':<44}{result.observes:>12} / {result.reconciles}")
    print(f"  {'RSS first / last / peak MiB':<44}{rss[0]:>8.1f} / {rss[-1]:.1f} / {max(rss):.1f}")
    print(f"  {'RSS growth, second half (least squares)':<44}{slope:>+8.2f} MiB/min")


async def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    t0 = time.perf_counter()
    bench = await setup(args)
    failed = 0
    try:
        not_ready = await settle_all(bench, args.rounds, "set-up")
        live = len(bench.ec2.live())
        print(
            f"set-up: {args.agents} agents, {live} live instances, {len(not_ready)} not Ready, "
            f"{time.perf_counter() - t0:.1f} s, RSS {rss_mib():.1f} MiB"
        )
        if not_ready:
            return 1
        plan = schedule(bench, args, rng)
        kinds = Counter(s.kind for s in plan)
        sent_for = await burst(bench, plan, args.rate)
        await bench.op.settle(within=120)
        reclaimed = reclaim_interrupted(bench, plan)
        not_ready = await settle_all(bench, args.rounds, "after the burst")
        lat = percentiles([s.latency for s in plan])
        print(
            f"\nburst: {len(plan)} requests in {sent_for:.1f} s"
            f" ({len(plan) / sent_for:.0f}/s, asked {args.rate:.0f}/s): {kinds['first']} first notices,"
            f" {kinds['duplicate']} re-deliveries, {kinds['unknown']} unknown;\n"
            f"  then {reclaimed} interrupted instances reclaimed by 'AWS';"
            f" {len(not_ready)} agents not serving/settled after"
        )
        print(f"  {'notice latency ms':<24}{'n':>6}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}{'mean':>9}")
        print(
            f"  {'':<24}{lat['n']:>6.0f}"
            + "".join(f"{lat[k] * 1e3:>9.1f}" for k in ("p50", "p95", "p99", "max", "mean"))
        )
        rows = check(bench, plan)
        print(f"\n  {'check':<58}{'failures':>10}{'of':>8}  result")
        for name, bad, total in rows:
            print(f"  {name:<58}{bad:>10}{total:>8}  {'ok' if bad == 0 else 'FAIL'}")
            failed += bad > 0
        failed += bool(not_ready)
        if args.soak_seconds > 0:
            gc.collect()
            result = await soak(bench, args)
            print_soak(result, args.agents)
            failed += result.heartbeat_failures > 0
    finally:
        await bench.op.shutdown()
        await bench.api.stop()
    print(f"\nresult: {'FAIL' if failed else 'ok'} ({time.perf_counter() - t0:.0f} s)")
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0, help="notice requests per second")
    parser.add_argument("--burst-seconds", type=float, default=10.0)
    parser.add_argument("--duplicates", type=float, default=0.10, help="share of requests that re-deliver")
    parser.add_argument("--unknown", type=float, default=0.02, help="share of requests for unknown instances")
    parser.add_argument("--soak-seconds", type=float, default=600.0)
    parser.add_argument("--heartbeat-every", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=50, help="heartbeat requests in flight at once")
    parser.add_argument("--observe-every", type=float, default=10.0)
    parser.add_argument("--reconcile-every", type=float, default=30.0)
    parser.add_argument("--sample-every", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=20, help="settling rounds before giving up")
    parser.add_argument("--seed", type=int, default=1)
    # The API logs every notice at WARNING: 1,000 lines of noise here. Errors still show.
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
