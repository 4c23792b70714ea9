"""`spot-operator`: the operator process.

Order of start: settings (a clear error and exit 2 when invalid) -> logging -> health and metrics
endpoints -> Kubernetes connection -> leader election (unless standalone) -> AWS, store, scorer ->
agent API -> background loops -> kopf. SIGTERM stops kopf, the loops and the servers, flushes the
store and hands the lease over.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Collection, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

import kopf
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from spot_operator import metrics
from spot_operator.adapters.kube import Connection, KubeClient, KubeObjects
from spot_operator.adapters.kubeconfig import load_connection
from spot_operator.agent_api.app import create_app
from spot_operator.agent_api.server import AgentApiServer
from spot_operator.agent_api.tokens import TokenStore
from spot_operator.ports import NoticeQueue, PriceStore, Scorer, SpotPriceSource
from spot_operator.runtime.agent_sink import OperatorSink
from spot_operator.runtime.leader import LeaseElector
from spot_operator.runtime.loops import DecisionCycle, NoticeCycle, PriceCycle, observe_cycle, run_every
from spot_operator.runtime.operator import Operator
from spot_operator.runtime.records import Recorder
from spot_operator.settings import Settings, SettingsError, from_env

log = logging.getLogger("spot_operator")


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extra fields passed with ``extra=`` are kept."""

    # kopf attaches its whole settings object to every record: 80 % of a line, and no news.
    _skip = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "settings"}

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        doc.update(
            {k: v for k, v in record.__dict__.items() if k not in self._skip and not k.startswith("_")}
        )
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stdout)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    for noisy in ("botocore", "boto3", "urllib3", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@dataclass
class Health:
    """/healthz: the event loop answers. /readyz: this replica leads and kopf is running."""

    leading: asyncio.Event
    kopf_ready: asyncio.Event

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        if not self.leading.is_set():
            return web.json_response({"status": "standby", "reason": "not the leader"}, status=503)
        if not self.kopf_ready.is_set():
            return web.json_response({"status": "starting", "reason": "kopf is not ready yet"}, status=503)
        return web.json_response({"status": "ready"})


async def metrics_handler(request: web.Request) -> web.Response:
    body = generate_latest(metrics.REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


@dataclass
class Wiring:
    """The outside world, built from settings; tests and the sandbox pass their own parts."""

    connection: Connection
    ec2: Any
    traffic: Any
    prices: SpotPriceSource | None = None
    queue: NoticeQueue | None = None
    store: PriceStore | None = None
    scorer: Scorer | None = None
    extra_tasks: list[Callable[[Operator], Coroutine[Any, Any, None]]] = field(default_factory=list)
    ignored_tasks: Collection[asyncio.Task[Any]] = ()


def aws_wiring(settings: Settings, connection: Connection) -> Wiring:
    from spot_operator.adapters.aws.clients import AwsClients, AwsConfig
    from spot_operator.adapters.aws.ec2 import AwsEc2
    from spot_operator.adapters.aws.prices import AwsSpotPrices
    from spot_operator.adapters.aws.queue import SqsNoticeQueue
    from spot_operator.adapters.aws.traffic import AwsTraffic

    clients = AwsClients(AwsConfig.from_env(settings.aws_endpoint_url))
    queue = SqsNoticeQueue(clients, settings.sqs_queue_url) if settings.sqs_queue_url else None
    return Wiring(connection, AwsEc2(clients), AwsTraffic(clients), AwsSpotPrices(clients), queue)


def default_scorer(op: Operator) -> Scorer:
    from spot_operator.decisions.rules import RuleScorer
    from spot_operator.runtime.history import OperatorHistory

    return RuleScorer(OperatorHistory(op))


async def start_store(settings: Settings) -> PriceStore | None:
    if not settings.database_url:
        log.info("no DATABASE_URL: price history, savings to date and decision records are off")
        return None
    from spot_operator.storage.store import SqlPriceStore

    store = SqlPriceStore.from_url(settings.database_url)
    await store.start()
    return store


async def run(
    settings: Settings,
    wiring: Wiring | None = None,
    stop: asyncio.Event | None = None,
    started: Callable[[Operator], None] | None = None,
) -> int:
    """Run until ``stop`` is set (or SIGTERM/SIGINT). Returns the exit code."""
    stop = stop or asyncio.Event()
    leading, kopf_ready = asyncio.Event(), asyncio.Event()
    health = Health(leading, kopf_ready)
    health_app = web.Application()
    health_app.router.add_get("/healthz", health.healthz)
    health_app.router.add_get("/readyz", health.readyz)
    metrics_app = web.Application()
    metrics_app.router.add_get("/metrics", metrics_handler)
    runners = [await serve(health_app, "0.0.0.0", settings.health_port)]
    if settings.metrics_port != settings.health_port:
        runners.append(await serve(metrics_app, "0.0.0.0", settings.metrics_port))
    else:
        health_app.router.add_get("/metrics", metrics_handler)

    connection = wiring.connection if wiring is not None else load_connection()
    wiring = wiring or aws_wiring(settings, connection)
    client = KubeClient(connection)
    elector: LeaseElector | None = None
    tasks: list[asyncio.Task[Any]] = []
    store: PriceStore | None = None
    api: AgentApiServer | None = None
    recorder: Recorder | None = None
    try:
        if settings.standalone:
            leading.set()
        else:
            namespace = os.environ.get("POD_NAMESPACE") or (
                settings.namespaces[0] if settings.namespaces else "default"
            )
            elector = LeaseElector(client, namespace, settings.peering)
            tasks.append(asyncio.create_task(elector.run(), name="leader election"))
            log.info("waiting to become the leader (lease %s/%s)", namespace, settings.peering)
            waiting = [asyncio.create_task(elector.active.wait()), asyncio.create_task(stop.wait())]
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            for t in waiting:
                t.cancel()
            if stop.is_set():
                return 0
            leading.set()

        store = wiring.store or await start_store(settings)
        kube_objects = KubeObjects(client)
        tokens = TokenStore()
        op = Operator(
            wiring.ec2,
            wiring.traffic,
            kube_objects,
            secrets=kube_objects,
            tokens=tokens,
        )
        recorder = Recorder(store) if store is not None else None
        if recorder is not None:
            op.on_switch_done, op.on_notice = recorder.switch_done, recorder.notice
        scorer = wiring.scorer or default_scorer(op)
        api = AgentApiServer(
            create_app(tokens, OperatorSink(op)), settings.agent_api_host, settings.agent_api_port
        )
        await api.start()

        tasks.append(
            asyncio.create_task(
                run_every(
                    "observe",
                    op,
                    observe_cycle,
                    settings.observe_interval_seconds,
                    leading,
                    wake=op.observe_wanted,
                ),
                name="observe",
            )
        )
        if wiring.prices is not None:
            tasks.append(
                asyncio.create_task(
                    run_every(
                        "prices",
                        op,
                        PriceCycle(wiring.prices, store),
                        settings.price_interval_seconds,
                        leading,
                        wake=op.prices_wanted,
                    ),
                    name="prices",
                )
            )
        tasks.append(
            asyncio.create_task(
                run_every(
                    "decisions",
                    op,
                    DecisionCycle(scorer, store),
                    settings.decision_interval_seconds,
                    leading,
                    initial_delay=min(settings.decision_interval_seconds, 30.0),
                ),
                name="decisions",
            )
        )
        if wiring.queue is not None:
            tasks.append(
                asyncio.create_task(
                    run_every("notices", op, NoticeCycle(wiring.queue, store), 0.0, leading), name="sqs"
                )
            )
        for extra in wiring.extra_tasks:
            tasks.append(asyncio.create_task(extra(op)))
        if started is not None:
            started(op)

        import spot_operator.handlers  # noqa: F401  (registers the handlers)

        stop_flag: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        loops = [t for t in tasks if t.get_name() != "leader election"]

        async def relay() -> None:
            nonlocal store, recorder
            waits = [asyncio.create_task(stop.wait())]
            if elector is not None:
                waits.append(asyncio.create_task(elector.lost.wait()))
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
            # Our side first, so kopf finds nothing of ours still running when it stops: the loops,
            # the reconciles (a grace to finish), then the history writes flushed into the store.
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await op.shutdown()
            if recorder is not None:
                await recorder.drain()
                recorder = None
            if store is not None and hasattr(store, "close"):
                await store.close()
                store = None
            if not stop_flag.done():
                stop_flag.set_result(None)

        tasks.append(asyncio.create_task(relay(), name="stop relay"))
        ready_flag: asyncio.Event = asyncio.Event()
        tasks.append(asyncio.create_task(_mirror(ready_flag, kopf_ready)))
        # kopf stops every task started while it ran, except those it is told to ignore: ours (loops,
        # servers) and whatever the caller's own servers run (an in-loop API emulation in tests).
        ignored = _Ignored(asyncio.all_tasks(), wiring.ignored_tasks, tasks)
        kopf_tasks = await kopf.spawn_tasks(
            registry=kopf.get_default_registry(),
            memo=kopf.Memo(operator=op, connection=connection),
            standalone=True,
            clusterwide=not settings.namespaces,
            namespaces=list(settings.namespaces),
            stop_flag=stop_flag,
            ready_flag=ready_flag,
        )
        await kopf.run_tasks(kopf_tasks, ignored=ignored)
        return 1 if elector is not None and elector.lost.is_set() else 0
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if api is not None:
            await api.stop()
        if recorder is not None:
            await recorder.drain()  # into the store's buffer, which close() flushes
        if store is not None and hasattr(store, "close"):
            await store.close()
        if elector is not None:
            await elector.release()
        await client.close()
        for runner in runners:
            await runner.cleanup()


class _Ignored(Collection[asyncio.Task[Any]]):
    """A live union of task collections (they may grow while kopf runs)."""

    def __init__(self, *parts: Collection[asyncio.Task[Any]]) -> None:
        self.parts = [set(parts[0]), *parts[1:]]

    def __contains__(self, task: object) -> bool:
        return any(task in part for part in self.parts)

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        for part in self.parts:
            yield from part

    def __len__(self) -> int:
        return sum(len(part) for part in self.parts)


async def _mirror(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()


def main() -> None:
    try:
        settings = from_env()
    except SettingsError as exc:
        print(f"spot-operator: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings)

    async def _main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await run(settings, stop=stop)

    raise SystemExit(asyncio.run(_main()))


if __name__ == "__main__":
    main()
