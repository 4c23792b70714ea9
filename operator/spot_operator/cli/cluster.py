"""How spotctl reaches the cluster: the kubectl-like options, one KubeClient per command, one-line errors.

A command builds a :class:`Cluster` from ``--kubeconfig``/``--context``/``--namespace`` and runs its
coroutine with :func:`run`. Whatever keeps us from the cluster (no kubeconfig, connection refused, a
timeout, rejected credentials, the CRDs missing) ends the command with one line on stderr and exit code 2;
a missing object is exit code 1. No traceback for any of them.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import aiohttp
import typer
import yaml
from rich.console import Console
from rich.text import Text

from spot_operator.adapters.kube import Connection, KubeClient, resource_path
from spot_operator.adapters.kubeconfig import (
    KubeconfigError,
    context_namespace,
    from_kubeconfig,
    in_cluster,
    in_cluster_namespace,
    kubeconfig_path,
)
from spot_operator.api.common import GROUP, VERSION
from spot_operator.errors import InvalidRequest, NotFound, Transient, Unauthorized

T = TypeVar("T")

UNREACHABLE = 2  # exit code: the cluster (or the database) cannot be used at all
FAILED = 1  # exit code: the cluster answered, and the answer is a failure

KIND_OF = {"spotagents": "SpotAgent", "replicas": "Replica", "switchrequests": "SwitchRequest"}

err_console = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)

KubeconfigOption = Annotated[
    Path | None,
    typer.Option(
        "--kubeconfig",
        help="The kubeconfig (default: $KUBECONFIG, else ~/.kube/config, else the pod's service account).",
        show_default=False,
    ),
]
ContextOption = Annotated[
    str | None, typer.Option("--context", help="The kubeconfig context (default: the current one).")
]
NamespaceOption = Annotated[
    str | None,
    typer.Option(
        "--namespace",
        "-n",
        help="The namespace (default: the context's, else 'default').",
        show_default=False,
    ),
]
AllNamespacesOption = Annotated[
    bool, typer.Option("--all-namespaces", "-A", help="Every namespace.", show_default=False)
]


class CrdsMissing(Exception):
    """The API server does not serve our resources: the CRDs are not installed."""


class CommandFailed(Exception):
    """The cluster answered, and the command cannot do what was asked: one line, exit code 1."""


class ObjectMissing(CommandFailed):
    """A named object does not exist (the CRDs do)."""


def fail(message: str, code: int = FAILED) -> NoReturn:
    """Print ``error: message`` on one line of stderr and end the command with ``code``."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", " ".join(message.split())))
    raise typer.Exit(code)


@dataclass(frozen=True)
class Cluster:
    """Where to connect and which namespace a command works in."""

    connection: Connection
    namespace: str

    @classmethod
    def resolve(cls, kubeconfig: Path | None, context: str | None, namespace: str | None) -> Cluster:
        """kubectl's order: --kubeconfig, $KUBECONFIG, ~/.kube/config, then the pod's service account."""
        try:
            no_file = kubeconfig is None and context is None and not kubeconfig_path().exists()
            if no_file and (pod := in_cluster()) is not None:
                return cls(pod, namespace or in_cluster_namespace() or "default")
            connection = from_kubeconfig(kubeconfig, context)
            return cls(connection, namespace or context_namespace(kubeconfig, context) or "default")
        except KubeconfigError as exc:
            fail(f"cannot use the cluster: {exc}", UNREACHABLE)
        except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as exc:  # unreadable, malformed
            fail(f"cannot use the cluster: bad kubeconfig ({type(exc).__name__}: {exc})", UNREACHABLE)

    @property
    def server(self) -> str:
        return self.connection.server


def split_name(ref: str, namespace: str) -> tuple[str, str]:
    """'name' (in ``namespace``) or 'namespace/name' -> (namespace, name)."""
    ns, sep, name = ref.rpartition("/")
    if sep and (not ns or not name or "/" in ns):
        raise typer.BadParameter(f"expected NAME or NAMESPACE/NAME, got {ref!r}")
    return (ns or namespace), name


def _why(exc: BaseException) -> str:
    cause = exc.__cause__
    if isinstance(cause, aiohttp.ClientConnectorError):
        if cause.os_error is not None and cause.os_error.errno == errno.ECONNREFUSED:
            return "connection refused"
        return str(cause.os_error or cause)
    if isinstance(cause, TimeoutError):
        return "timed out"
    return str(cause or exc)


def run(cluster: Cluster, work: Callable[[KubeClient], Awaitable[T]]) -> T:
    """Run ``work`` with a client for ``cluster``; each way it can fail becomes one line and an exit code."""

    async def main() -> T:
        client = KubeClient(cluster.connection)
        try:
            return await work(client)
        finally:
            await client.close()

    try:
        return asyncio.run(main())
    except Transient as exc:
        if isinstance(exc.__cause__, aiohttp.ClientError | TimeoutError):
            fail(f"cannot reach the cluster at {cluster.server}: {_why(exc)}", UNREACHABLE)
        fail(f"the cluster at {cluster.server} is not answering properly: {exc}", UNREACHABLE)
    except Unauthorized as exc:
        fail(f"the cluster at {cluster.server} refused the request ({exc.code}): {exc}", UNREACHABLE)
    except CrdsMissing as exc:
        fail(
            f"CRDs not installed: the cluster at {cluster.server} does not serve {exc} "
            f"({GROUP}/{VERSION}); install the chart or `kubectl apply -f crds/`",
            UNREACHABLE,
        )
    except CommandFailed as exc:
        fail(str(exc))
    except InvalidRequest as exc:
        fail(f"the cluster refused the request: {exc}")
    except OSError as exc:  # the CA or client certificate files of the kubeconfig
        fail(f"cannot use the cluster at {cluster.server}: {exc}", UNREACHABLE)


def path(plural: str, namespace: str | None, name: str | None = None) -> str:
    return resource_path(GROUP, VERSION, plural, namespace, name)


async def list_objects(client: KubeClient, plural: str, namespace: str | None) -> list[dict[str, Any]]:
    """Every object of ``plural`` in ``namespace`` (None: all namespaces)."""
    try:
        body = await client.get(path(plural, namespace))
    except NotFound:
        raise CrdsMissing(f"{plural}.{GROUP}") from None
    items: list[dict[str, Any]] = body.get("items") or []
    return items


async def get_object(client: KubeClient, plural: str, namespace: str, name: str) -> dict[str, Any]:
    """One object; a 404 is told apart: the object is missing, or the resource itself (no CRDs)."""
    try:
        return await client.get(path(plural, namespace, name))
    except NotFound:
        pass
    try:
        await client.get(path(plural, namespace) + "?limit=1")
    except NotFound:
        raise CrdsMissing(f"{plural}.{GROUP}") from None
    raise ObjectMissing(f"{KIND_OF.get(plural, plural)} {namespace}/{name} not found")


async def create_object(
    client: KubeClient, plural: str, namespace: str, body: dict[str, Any]
) -> dict[str, Any]:
    try:
        return await client.create(path(plural, namespace), body)
    except NotFound:
        raise CrdsMissing(f"{plural}.{GROUP}") from None
