"""`spotctl status`: the SpotAgents, their primaries, prices, savings and the conditions worth a look."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from spot_operator.adapters.kube import KubeClient
from spot_operator.cli.app import app
from spot_operator.cli.cluster import (
    AllNamespacesOption,
    Cluster,
    ContextOption,
    KubeconfigOption,
    NamespaceOption,
    list_objects,
    run,
)
from spot_operator.cli.output import Output, OutputOption, dump

console = Console(width=max(Console().width, 220), markup=False)

# Conditions that are bad news when True; for the others (Ready, PrimaryHealthy, ...) it is False/Unknown.
TRUE_IS_TROUBLE = frozenset({"InterruptionPending", "Degraded"})


def interesting(condition: dict[str, Any]) -> bool:
    status = condition.get("status")
    if condition.get("type") in TRUE_IS_TROUBLE:
        return status != "False"
    return status != "True"


def summary(agent: dict[str, Any]) -> dict[str, Any]:
    """What `status -o json|yaml` prints for one agent: its identity, mode and status as the API has it."""
    meta, spec, status = agent.get("metadata", {}), agent.get("spec", {}), agent.get("status") or {}
    return {
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "mode": spec.get("mode", "auto-switch"),
        "paused": bool(spec.get("paused", False)),
        "phase": status.get("phase"),
        "primary": status.get("primary"),
        "savings": status.get("savings"),
        "replicas": status.get("replicas", []),
        "lastSwitch": status.get("lastSwitch"),
        "conditions": status.get("conditions", []),
    }


def _money(value: Any, digits: int = 4) -> str:
    return "-" if value is None else f"{float(value):.{digits}f}"


def _condition_text(condition: dict[str, Any], with_message: bool) -> str:
    text = f"{condition.get('type')}={condition.get('status')}"
    if condition.get("reason"):
        text += f" {condition['reason']}"
    if with_message and condition.get("message"):
        text += f": {condition['message']}"
    return text


def render(agents: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in ("agent", "mode", "phase", "primary", "pool", "lifecycle"):
        table.add_column(column, no_wrap=True)
    for column in ("$/h", "saved %", "saved $/h", "saved to date $"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("conditions", min_width=24)
    for item in agents:
        primary = item["primary"] or {}
        savings = item["savings"] or {}
        mode = item["mode"] + (" (paused)" if item["paused"] else "")
        flagged = [_condition_text(c, False) for c in item["conditions"] if interesting(c)]
        table.add_row(
            f"{item['namespace']}/{item['name']}",
            mode,
            item["phase"] or "-",
            primary.get("instanceId") or "-",
            primary.get("pool") or "-",
            primary.get("lifecycle") or "-",
            _money(primary.get("hourlyPrice")),
            "-" if not savings else f"{float(savings.get('percent', 0.0)):.1f}",
            _money(savings.get("hourlyUsd") if savings else None),
            _money(savings.get("toDateUsd") if savings else None, 2),
            "\n".join(flagged) or "ok",
        )
    return table


def details(agents: list[dict[str, Any]]) -> list[str]:
    """One line per condition worth a look, with its message: the table has no room for them."""
    return [
        f"{item['namespace']}/{item['name']}: {_condition_text(c, True)}"
        for item in agents
        for c in item["conditions"]
        if interesting(c)
    ]


@app.command("status")
def status_command(
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
    all_namespaces: AllNamespacesOption = False,
    output: OutputOption = Output.TABLE,
) -> None:
    """The SpotAgents: mode, phase, primary, pool, price, savings, and conditions that are not fine."""
    cluster = Cluster.resolve(kubeconfig, context, namespace)
    where = None if all_namespaces else cluster.namespace

    async def fetch(client: KubeClient) -> list[dict[str, Any]]:
        return await list_objects(client, "spotagents", where)

    agents = sorted(
        (summary(a) for a in run(cluster, fetch)), key=lambda a: (a["namespace"] or "", a["name"] or "")
    )
    if output is not Output.TABLE:
        dump(agents, output)
    elif not agents:
        scope = "any namespace" if where is None else f"namespace {where}"
        console.print(f"no SpotAgents in {scope}")
    else:
        scope = "all namespaces" if where is None else f"namespace {where}"
        console.print(render(agents, f"SpotAgents in {scope} ({cluster.server})"))
        for line in details(agents):
            console.print(line, highlight=False, soft_wrap=True)
