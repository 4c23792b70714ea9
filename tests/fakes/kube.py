"""The Kubernetes API emulation (``spot_operator.sandbox.kubeapi``) for tests, and kopf running against it.

- ``kube_api`` (function): a fresh ``KubeApi`` served in the test's event loop on 127.0.0.1 (a free port). It
  yields a ``KubeCluster``: ``.url``, ``.kubeconfig`` (a file, no credentials), ``.api`` (the emulator itself:
  ``find``/``select`` for the stored objects, kmock's ``objects`` with their history, ``request_log``) and
  ``.client`` (a ``KubeClient``). ``served_kube_api(directory, **options)`` does the same with other options,
  e.g. ``fast_path=False`` or ``request_log_limit=None``.
- ``KubeClient``: create/get/list/patch/replace/delete/watch over HTTP with aiohttp. A non-2xx answer raises
  ``KubeApiError`` carrying the status code and the API's ``Status`` body; ``request()`` never raises.
- ``run_operator(cluster, registry=... or modules=[...])``: runs a kopf operator in the loop until the block
  ends: a login handler pointing at the cluster (or a URL), scanning off, standalone, cluster-wide unless
  ``namespaces`` are given. It works for any handlers: pass a registry, or handler modules to import into a
  fresh one (``load_handlers``). kopf's exit waits up to 5 s for every task started after it; given a cluster,
  it skips the emulator's own connection tasks, so stopping takes milliseconds.
- ``until(predicate, within)``: poll until a (sync or async) predicate is truthy.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import importlib
import inspect
import json
import sys
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import aiohttp
import kopf
import pytest_asyncio

from spot_operator.sandbox.kubeapi import (
    BUILTIN_RESOURCES,
    KubeApi,
    ResourceSpec,
    crd_resources,
    lookup,
    project_crds,
    serve,
)

JsonObj = dict[str, Any]
Resource = str | ResourceSpec
PATCH_TYPES = {"merge": "application/merge-patch+json", "json": "application/json-patch+json"}


def known_resources() -> list[ResourceSpec]:
    """The built-in resources and the project's CRDs, for a client of a server started elsewhere."""
    return [*BUILTIN_RESOURCES, *(spec for crd in project_crds() for spec in crd_resources(crd))]


class KubeApiError(Exception):
    """A non-2xx answer: ``status`` and the API's ``Status`` body (``reason``, ``message``, ``code``)."""

    def __init__(self, status: int, body: Any) -> None:
        reason = body.get("reason") if isinstance(body, dict) else None
        message = body.get("message") if isinstance(body, dict) else body
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.body = body
        self.reason = reason


class WatchStream:
    """An open watch: read its events one by one (each a dict with ``type`` and ``object``)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def next(self, within: float = 10.0) -> JsonObj:
        line = await asyncio.wait_for(self.response.content.readline(), within)
        if not line:
            raise EOFError("the watch stream ended")
        event: JsonObj = json.loads(line)
        return event

    async def take(self, count: int, within: float = 10.0) -> list[JsonObj]:
        return [await self.next(within) for _ in range(count)]

    async def rest(self, within: float = 10.0) -> list[JsonObj]:
        """Every event until the server ends the stream (e.g. ``timeoutSeconds``)."""
        events = []
        while line := await asyncio.wait_for(self.response.content.readline(), within):
            events.append(json.loads(line))
        return events


@dataclass
class KubeClient:
    """A small Kubernetes client over aiohttp for tests; ``resolve`` maps a resource name to its spec."""

    session: aiohttp.ClientSession
    url: str
    resolve: Callable[[str], ResourceSpec] = field(default=lambda name: lookup(known_resources(), name))

    def spec(self, resource: Resource) -> ResourceSpec:
        return resource if isinstance(resource, ResourceSpec) else self.resolve(resource)

    def path(
        self,
        resource: Resource,
        namespace: str | None = None,
        name: str | None = None,
        subresource: str | None = None,
    ) -> str:
        spec = self.spec(resource)
        path = f"/apis/{spec.group}/{spec.version}" if spec.group else f"/api/{spec.version}"
        if spec.namespaced and namespace is not None:
            path += f"/namespaces/{namespace}"
        path += f"/{spec.plural}"
        if name is not None:
            path += f"/{name}"
        if subresource is not None:
            path += f"/{subresource}"
        return path

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Send one request; return the status and the decoded body (or text); never raise for a status."""
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else {}
        async with self.session.request(
            method, self.url + path, data=data, headers=headers, params=params
        ) as response:
            text = await response.text()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text

    async def _call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> JsonObj:
        status, answer = await self.request(method, path, body, **kwargs)
        if not 200 <= status < 300:
            raise KubeApiError(status, answer)
        result: JsonObj = answer
        return result

    def _namespace(self, resource: Resource, namespace: str | None) -> str | None:
        return (namespace or "default") if self.spec(resource).namespaced else None

    async def create(
        self, resource: Resource, body: Mapping[str, Any], namespace: str | None = None
    ) -> JsonObj:
        namespace = namespace or body.get("metadata", {}).get("namespace")
        return await self._call("POST", self.path(resource, self._namespace(resource, namespace)), dict(body))

    async def get(
        self, resource: Resource, name: str, namespace: str | None = None, subresource: str | None = None
    ) -> JsonObj:
        return await self._call(
            "GET", self.path(resource, self._namespace(resource, namespace), name, subresource)
        )

    async def list(self, resource: Resource, namespace: str | None = None, **params: str) -> JsonObj:
        return await self._call("GET", self.path(resource, namespace), params=params)

    async def patch(
        self,
        resource: Resource,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        subresource: str | None = None,
        kind: Literal["merge", "json"] = "merge",
    ) -> JsonObj:
        path = self.path(resource, self._namespace(resource, namespace), name, subresource)
        return await self._call("PATCH", path, patch, content_type=PATCH_TYPES[kind])

    async def replace(
        self,
        resource: Resource,
        name: str,
        body: Mapping[str, Any],
        namespace: str | None = None,
        *,
        subresource: str | None = None,
    ) -> JsonObj:
        path = self.path(resource, self._namespace(resource, namespace), name, subresource)
        return await self._call("PUT", path, dict(body))

    async def delete(
        self, resource: Resource, name: str, namespace: str | None = None, **options: Any
    ) -> JsonObj:
        """Delete; ``options`` go into the DeleteOptions body (``propagationPolicy``, ``preconditions``)."""
        path = self.path(resource, self._namespace(resource, namespace), name)
        return await self._call("DELETE", path, dict(options) or None)

    @contextlib.asynccontextmanager
    async def watch(
        self, resource: Resource, namespace: str | None = None, **params: str
    ) -> AsyncIterator[WatchStream]:
        """Open a watch; ``resourceVersion``, ``labelSelector``, ``timeoutSeconds``... as keywords."""
        url = self.url + self.path(resource, namespace)
        async with self.session.get(url, params={"watch": "true", **params}) as response:
            if response.status != 200:
                raise KubeApiError(response.status, await response.text())
            yield WatchStream(response)


@dataclass
class KubeCluster:
    """A served emulator: where it is, the emulator itself, and a client for it."""

    api: KubeApi = field(repr=False)
    url: str
    kubeconfig: Path
    client: KubeClient = field(repr=False)


@contextlib.asynccontextmanager
async def served_kube_api(directory: Path, **options: Any) -> AsyncIterator[KubeCluster]:
    """A ``KubeApi(**options)`` served on 127.0.0.1 with a kubeconfig in ``directory``, and a client."""
    api = KubeApi(**options)
    async with serve(api, kubeconfig=directory / "kubeconfig") as served, aiohttp.ClientSession() as session:
        assert served.kubeconfig is not None
        yield KubeCluster(api, served.url, served.kubeconfig, KubeClient(session, served.url, api.spec))


@pytest_asyncio.fixture
async def kube_api(tmp_path: Path) -> AsyncIterator[KubeCluster]:
    async with served_kube_api(tmp_path) as cluster:
        yield cluster


async def until(predicate: Callable[[], Any], within: float = 15.0, interval: float = 0.05) -> Any:
    """Poll ``predicate`` (sync or async) until it returns something truthy; return that, or fail."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"not true within {within}s: {predicate!r} gave {result!r}")
        await asyncio.sleep(interval)


# --- kopf in the same loop ---------------------------------------------------------------------------------

_SERVER_URL: contextvars.ContextVar[str] = contextvars.ContextVar("kube_api_server_url")
_LOGIN_ID = "kube-api-emulation-login"
_with_login: weakref.WeakSet[kopf.OperatorRegistry] = weakref.WeakSet()


async def _login(**_: Any) -> kopf.ConnectionInfo:
    return kopf.ConnectionInfo(server=_SERVER_URL.get(), default_namespace="default")


def _add_login(registry: kopf.OperatorRegistry) -> None:
    """One login handler per registry, reading the URL of the operator it runs in: registries are reusable."""
    if registry not in _with_login:
        kopf.on.login(registry=registry, id=_LOGIN_ID)(_login)
        _with_login.add(registry)


def load_handlers(*modules: str | ModuleType) -> kopf.OperatorRegistry:
    """Import handler modules (decorated with ``@kopf.on...`` and no registry) into a fresh registry.

    A module imported before is reloaded, so its decorators run again into the new registry.
    """
    registry = kopf.OperatorRegistry()
    previous = kopf.get_default_registry()
    kopf.set_default_registry(registry)
    try:
        for module in modules:
            name = module if isinstance(module, str) else module.__name__
            if name in sys.modules:
                importlib.reload(sys.modules[name])
            else:
                importlib.import_module(name)
    finally:
        kopf.set_default_registry(previous)
    return registry


class _Ignored(Collection[asyncio.Task[Any]]):
    """Tasks kopf must not wait for at exit: those before it started and the emulator's connection tasks."""

    def __init__(self, before: Collection[asyncio.Task[Any]], live: Collection[asyncio.Task[Any]]) -> None:
        self.before = set(before)
        self.live = live

    def __contains__(self, task: object) -> bool:
        return task in self.before or task in self.live

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        yield from self.before
        yield from self.live

    def __len__(self) -> int:
        return len(self.before) + len(self.live)


@dataclass
class RunningOperator:
    registry: kopf.OperatorRegistry
    settings: kopf.OperatorSettings
    task: asyncio.Task[None]
    stop_flag: asyncio.Event
    ready_flag: asyncio.Event


def default_settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.scanning.disabled = True  # no namespace/CRD observation: the operator is told what to serve
    settings.networking.request_timeout = 30
    return settings


@contextlib.asynccontextmanager
async def run_operator(
    target: KubeCluster | str,
    *,
    registry: kopf.OperatorRegistry | None = None,
    modules: Sequence[str | ModuleType] = (),
    settings: kopf.OperatorSettings | None = None,
    namespaces: Sequence[str] = (),
    standalone: bool = True,
    ready_timeout: float = 30.0,
    stop_timeout: float = 30.0,
) -> AsyncIterator[RunningOperator]:
    """Run kopf in this loop against ``target`` with the handlers of ``registry`` or ``modules``."""
    url = target if isinstance(target, str) else target.url
    server_tasks: Collection[asyncio.Task[Any]] = () if isinstance(target, str) else target.api.server_tasks
    if (registry is None) == (not modules):
        raise TypeError("pass either a registry or handler modules")
    registry = registry if registry is not None else load_handlers(*modules)
    _add_login(registry)
    settings = settings if settings is not None else default_settings()
    stop_flag, ready_flag = asyncio.Event(), asyncio.Event()

    async def operate() -> None:
        _SERVER_URL.set(url)
        before = asyncio.all_tasks()
        tasks = await kopf.spawn_tasks(
            registry=registry,
            settings=settings,
            clusterwide=not namespaces,
            namespaces=namespaces,
            standalone=standalone,
            stop_flag=stop_flag,
            ready_flag=ready_flag,
        )
        await kopf.run_tasks(tasks, ignored=_Ignored(before, server_tasks))

    task = asyncio.create_task(operate(), name="kopf operator on the Kubernetes API emulation")
    running = RunningOperator(registry, settings, task, stop_flag, ready_flag)
    try:
        await _first(ready_flag.wait(), task, within=ready_timeout)
        yield running
    finally:
        stop_flag.set()
        await asyncio.wait_for(asyncio.shield(task), stop_timeout)


async def _first(waiting: Awaitable[Any], task: asyncio.Task[None], within: float) -> None:
    """Wait for ``waiting``; fail early with the operator's own error if it dies first."""
    waiter = asyncio.ensure_future(waiting)
    done, _ = await asyncio.wait({waiter, task}, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    if waiter not in done:
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter
        if task in done:
            task.result()  # re-raises the operator's failure
            raise RuntimeError("the operator exited before it was ready")
        raise TimeoutError(f"the operator was not ready within {within}s")
