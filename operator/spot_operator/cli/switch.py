"""`spotctl switch` and `spotctl promote`: create a SwitchRequest and, with --wait, follow it to the end."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console

from spot_operator.adapters.kube import KubeClient
from spot_operator.api.common import API_VERSION, ObjectRef
from spot_operator.api.replica import ReplicaPhase
from spot_operator.api.switchrequest import (
    DEFAULT_PRIORITY,
    SWITCH_FINAL_PHASES,
    SwitchPhase,
    SwitchReason,
    SwitchRequestSpec,
    SwitchTarget,
    TargetKind,
)
from spot_operator.cli.app import app
from spot_operator.cli.cluster import (
    Cluster,
    CommandFailed,
    ContextOption,
    KubeconfigOption,
    NamespaceOption,
    ObjectMissing,
    create_object,
    fail,
    get_object,
    list_objects,
    run,
    split_name,
)

console = Console(width=max(Console().width, 120), highlight=False, soft_wrap=True, markup=False)

NAME_LIMIT = 253
WaitOption = Annotated[bool, typer.Option(help="Follow the switch until it completes or fails.")]
TimeoutOption = Annotated[float, typer.Option(help="With --wait: give up waiting after this many seconds.")]
IntervalOption = Annotated[float, typer.Option(hidden=True, help="With --wait: seconds between polls.")]
ReasonOption = Annotated[SwitchReason, typer.Option(help="Why it moves (sets the default priority).")]
PriorityOption = Annotated[
    int | None, typer.Option(min=0, max=100, help="0-100; default by reason (manual 75).", show_default=False)
]
NameOption = Annotated[
    str | None,
    typer.Option("--name", help="The SwitchRequest's name (default: generated).", show_default=False),
]


class PromoteRefused(CommandFailed):
    """The replica to promote cannot be chosen or is not promotable."""


def generated_name(agent: str, label: str) -> str:
    suffix = f"-{label}-{secrets.token_hex(3)}"
    return agent[: NAME_LIMIT - len(suffix)].rstrip("-.") + suffix


def switch_body(
    namespace: str, name: str, agent: str, target: SwitchTarget, reason: SwitchReason, priority: int | None
) -> dict[str, Any]:
    """The SwitchRequest as the API takes it; the spec validated by the same model the CRD comes from."""
    spec = SwitchRequestSpec(agent_ref=ObjectRef(name=agent), target=target, reason=reason, priority=priority)
    return {
        "apiVersion": API_VERSION,
        "kind": "SwitchRequest",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"spotoptimizer.io/agent": agent, "spotoptimizer.io/created-by": "spotctl"},
        },
        "spec": spec.model_dump(mode="json", by_alias=True, exclude_none=True),
    }


def pick_replica(agent: str, replicas: list[dict[str, Any]], wanted: str | None) -> str:
    """The Replica of ``agent`` to promote: ``wanted`` if it is Ready, else its only Ready one."""
    own = [r for r in replicas if ((r.get("spec") or {}).get("agentRef") or {}).get("name") == agent]

    def phase(r: dict[str, Any]) -> str:
        return str((r.get("status") or {}).get("phase") or ReplicaPhase.LAUNCHING)

    def name(r: dict[str, Any]) -> str:
        return str(r["metadata"]["name"])

    if wanted is not None:
        match = [r for r in own if name(r) == wanted]
        if not match:
            others = ", ".join(sorted(name(r) for r in own)) or "none"
            raise PromoteRefused(
                f"Replica {wanted} does not belong to SpotAgent {agent} (its replicas: {others})"
            )
        if phase(match[0]) != ReplicaPhase.READY:
            raise PromoteRefused(f"Replica {wanted} is {phase(match[0])}, not Ready: it cannot take over yet")
        return wanted
    ready = sorted(name(r) for r in own if phase(r) == ReplicaPhase.READY)
    if len(ready) == 1:
        return ready[0]
    if not ready:
        listed = ", ".join(f"{name(r)} ({phase(r)})" for r in sorted(own, key=name))
        raise PromoteRefused(
            f"SpotAgent {agent} has no Ready replica" + (f" (replicas: {listed})" if listed else "")
        )
    raise PromoteRefused(
        f"SpotAgent {agent} has {len(ready)} Ready replicas ({', '.join(ready)}): "
        f"name one, e.g. `spotctl promote {agent} {ready[0]}`"
    )


@dataclass(frozen=True)
class Outcome:
    name: str
    namespace: str
    status: dict[str, Any]
    timed_out: bool = False

    @property
    def phase(self) -> str:
        return str(self.status.get("phase") or SwitchPhase.PENDING)


async def follow(
    client: KubeClient, namespace: str, name: str, give_up_after: float, interval: float
) -> Outcome:
    """Poll the SwitchRequest, printing each phase it reaches, until a final phase or ``give_up_after`` s."""
    started = time.monotonic()
    seen: str | None = None
    with console.status(f"switchrequest {name}: waiting for the operator") as spinner:
        while True:
            try:
                body = await get_object(client, "switchrequests", namespace, name)
            except ObjectMissing:
                raise ObjectMissing(f"SwitchRequest {namespace}/{name} was deleted while waiting") from None
            outcome = Outcome(name, namespace, body.get("status") or {})
            elapsed = time.monotonic() - started
            if outcome.phase != seen:
                seen = outcome.phase
                message = outcome.status.get("message") or ""
                console.print(f"{elapsed:7.1f} s  {seen}" + (f"  {message}" if message else ""))
            if outcome.phase in SWITCH_FINAL_PHASES:
                return outcome
            if elapsed >= give_up_after:
                return Outcome(name, namespace, outcome.status, timed_out=True)
            spinner.update(f"switchrequest {name}: {seen} ({elapsed:.0f} s)")
            await asyncio.sleep(interval)


def _failure(status: dict[str, Any]) -> str:
    conditions = status.get("conditions") or []
    failed = [c for c in conditions if c.get("status") == "False"] or conditions
    if failed:
        c = failed[-1]
        return f"{c.get('reason') or 'Unknown'}: {c.get('message') or status.get('message') or ''}".rstrip(
            ": "
        )
    return str(status.get("message") or "no reason given")


def report(outcome: Outcome, timeout: float) -> None:
    """Print how the switch ended; a failure, a supersession or a timeout exits non-zero."""
    what = f"SwitchRequest {outcome.namespace}/{outcome.name}"
    if outcome.timed_out:
        fail(
            f"{what} still {outcome.phase} after {timeout:.0f} s; it goes on in the cluster "
            f"(kubectl get switchrequest -n {outcome.namespace} {outcome.name})"
        )
    status = outcome.status
    if outcome.phase == SwitchPhase.FAILED:
        fail(f"{what} Failed: {_failure(status)}")
    if outcome.phase == SwitchPhase.SUPERSEDED:
        fail(f"{what} Superseded: {status.get('message') or 'another switch took its place'}")
    moved = f"{status.get('oldPool') or '?'} -> {status.get('newPool') or '?'}"
    instances = f"{status.get('oldInstanceId') or '?'} -> {status.get('newInstanceId') or '?'}"
    timings = status.get("timings") or {}
    spent = ", ".join(
        f"{label} {timings[key]:.1f} s"
        for key, label in (
            ("launchSeconds", "launch"),
            ("cutoverSeconds", "cutover"),
            ("downtimeSeconds", "downtime"),
        )
        if timings.get(key) is not None
    )
    console.print(f"{what} Completed: {moved} ({instances})" + (f"; {spent}" if spent else ""))


def _submit(
    cluster: Cluster,
    agent_ref: str,
    name: str | None,
    label: str,
    target_for: Callable[[KubeClient, str, str], Awaitable[SwitchTarget]],
    reason: SwitchReason,
    priority: int | None,
    wait: bool,
    timeout: float,
    interval: float,
) -> None:
    """Check the agent exists, build the target (``target_for(client, agent)``), create, and maybe follow."""
    namespace, agent = split_name(agent_ref, cluster.namespace)

    async def work(client: KubeClient) -> Outcome | None:
        await get_object(client, "spotagents", namespace, agent)
        target = await target_for(client, namespace, agent)
        chosen = name or generated_name(agent, label)
        body = switch_body(namespace, chosen, agent, target, reason, priority)
        created = await create_object(client, "switchrequests", namespace, body)
        spec = created.get("spec", {})
        priority_now = spec.get("priority", DEFAULT_PRIORITY[SwitchReason(spec.get("reason", reason))])
        console.print(
            f"switchrequest {namespace}/{chosen} created: {agent} -> {_describe(spec.get('target', {}))} "
            f"(reason {spec.get('reason')}, priority {priority_now})"
        )
        if not wait:
            return None
        return await follow(client, namespace, chosen, timeout, interval)

    try:
        outcome = run(cluster, work)
    except KeyboardInterrupt:
        console.print("stopped waiting; the switch goes on in the cluster")
        raise typer.Exit(130) from None
    if outcome is not None:
        report(outcome, timeout)


def _describe(target: dict[str, Any]) -> str:
    kind = target.get("kind")
    if kind == TargetKind.POOL:
        return f"pool {target.get('pool')}"
    if kind == TargetKind.REPLICA:
        return f"replica {target.get('replicaRef')}"
    if kind == TargetKind.ON_DEMAND and target.get("pool"):
        return f"on-demand in {target.get('pool')}"
    return str(kind)


def _target(to_pool: str | None, on_demand: bool, cheapest: bool) -> SwitchTarget:
    if cheapest and (to_pool or on_demand):
        raise typer.BadParameter(
            "--cheapest goes alone (no --to-pool or --on-demand)", param_hint="--cheapest"
        )
    if not (to_pool or on_demand or cheapest):
        raise typer.BadParameter(
            "say where to: --to-pool POOL, --on-demand or --cheapest", param_hint="target"
        )
    kind = TargetKind.ON_DEMAND if on_demand else TargetKind.CHEAPEST if cheapest else TargetKind.POOL
    try:
        return SwitchTarget(kind=kind, pool=to_pool)
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]) for e in exc.errors())
        raise typer.BadParameter(f"{to_pool!r}: {problems}", param_hint="--to-pool") from None


@app.command("switch")
def switch_command(
    agent: Annotated[str, typer.Argument(help="The SpotAgent: NAME or NAMESPACE/NAME.")],
    to_pool: Annotated[
        str | None,
        typer.Option(
            help="A spot pool '<type>.<zone>' (with --on-demand: on-demand there).", show_default=False
        ),
    ] = None,
    on_demand: Annotated[bool, typer.Option("--on-demand", help="Move to on-demand capacity.")] = False,
    cheapest: Annotated[bool, typer.Option("--cheapest", help="The planner's best spot pool now.")] = False,
    reason: ReasonOption = SwitchReason.MANUAL,
    priority: PriorityOption = None,
    name: NameOption = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = 900.0,
    interval: IntervalOption = 1.0,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Move a SpotAgent's primary: create a SwitchRequest; --wait follows it and fails if the switch does."""
    target = _target(to_pool, on_demand, cheapest)
    cluster = Cluster.resolve(kubeconfig, context, namespace)
    label = {TargetKind.POOL: "to-pool", TargetKind.ON_DEMAND: "on-demand"}.get(target.kind, "cheapest")

    async def fixed(_client: KubeClient, _namespace: str, _agent: str) -> SwitchTarget:
        return target

    _submit(cluster, agent, name, label, fixed, reason, priority, wait, timeout, interval)


@app.command("promote")
def promote_command(
    agent: Annotated[str, typer.Argument(help="The SpotAgent: NAME or NAMESPACE/NAME.")],
    replica: Annotated[
        str | None,
        typer.Argument(
            help="The Replica to promote (default: the agent's only Ready one).", show_default=False
        ),
    ] = None,
    reason: ReasonOption = SwitchReason.MANUAL,
    priority: PriorityOption = None,
    name: NameOption = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = 900.0,
    interval: IntervalOption = 1.0,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Promote a Ready Replica to primary: a SwitchRequest with a replica target."""
    cluster = Cluster.resolve(kubeconfig, context, namespace)

    async def replica_target(client: KubeClient, ns: str, agent_name: str) -> SwitchTarget:
        replicas = await list_objects(client, "replicas", ns)
        chosen = pick_replica(agent_name, replicas, replica)
        return SwitchTarget(kind=TargetKind.REPLICA, replica_ref=chosen)

    _submit(cluster, agent, name, "promote", replica_target, reason, priority, wait, timeout, interval)
