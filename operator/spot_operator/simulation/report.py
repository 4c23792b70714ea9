"""What a comparison writes: a JSON document and PNG plots (matplotlib's Agg backend: no display)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from spot_operator.simulation.simulator import ScenarioResult, SimulationParams, params_dict, totals

COLOURS = {
    "on-demand": "#7f7f7f",
    "stay": "#1f77b4",
    "cheapest": "#ff7f0e",
    "ours-rules": "#2ca02c",
    "ours-xgboost": "#d62728",
    "hot-standby": "#9467bd",
}


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower()


def document(
    results: Sequence[ScenarioResult], params: SimulationParams, policies: Sequence[str], meta: dict[str, Any]
) -> dict[str, Any]:
    return {
        "meta": meta,
        "params": params_dict(params),
        "totals": totals(results, policies),
        "scenarios": [
            {
                "name": r.scenario.name,
                "instance_type": r.scenario.instance_type,
                "region": r.scenario.region,
                "zones": {p.zone: r.scenario.original_zone.get(p, p.zone) for p in r.scenario.pools},
                "start": r.scenario.start.isoformat(),
                "hours": round(r.scenario.duration_seconds / 3600, 3),
                "note": r.scenario.note,
                "model": r.model,
                "results": [
                    {
                        **res.summary(),
                        "cost_series": res.cost_series,
                        "occupancy": res.occupancy,
                        "notes": res.notes,
                    }
                    for res in r.results
                ],
            }
            for r in results
        ],
    }


def write_json(path: Path, doc: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    return path


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_cost(result: ScenarioResult, path: Path) -> Path:
    """Cumulative cost per policy over the replay."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 5))
    for res in result.results:
        hours = [h for h, _ in res.cost_series]
        cost = [c for _, c in res.cost_series]
        ax.plot(
            hours,
            cost,
            label=f"{res.policy} ({res.savings_percent:.1f} % saved)",
            color=COLOURS.get(res.policy),
            linewidth=1.6,
        )
    ax.set_xlabel("hours since start")
    ax.set_ylabel("cumulative cost (USD)")
    ax.set_title(f"Cost over time: {result.scenario.name}")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_occupancy(result: ScenarioResult, path: Path, min_available: int = 1) -> Path:
    """Top: each pool's availability in the trace. Below: where each policy's primary served."""
    plt = _pyplot()
    scenario = result.scenario
    pools = scenario.pools
    zones = [p.zone for p in pools]
    palette = plt.get_cmap("tab10")
    colour = {z: palette(i % 10) for i, z in enumerate(zones)}
    rows = len(pools) + len(result.results)
    fig, ax = plt.subplots(figsize=(11, 0.45 * rows + 1.6))
    labels = []
    y = 0
    for pool in pools:
        av = scenario.availability(pool, min_available)
        edges = [*av.times.tolist(), av.end]
        spans = [
            ((a - av.start) / 3600, (b - a) / 3600)
            for a, b, ok in zip(edges[:-1], edges[1:], av.values.tolist(), strict=True)
            if ok
        ]
        ax.broken_barh(spans, (y + 0.15, 0.7), facecolors=colour[pool.zone], alpha=0.45)
        labels.append(f"trace {scenario.label(pool)}")
        y += 1
    for res in result.results:
        spans_by: dict[str, list[tuple[float, float]]] = {}
        for a, b, lab in res.occupancy:
            spans_by.setdefault(lab, []).append((a, b - a))
        for lab, spans in spans_by.items():
            if lab == "down":
                face = "#d62728"
            elif lab.endswith("on-demand"):
                face = "#4d4d4d"
            else:
                face = colour.get(lab.split(" ")[0], "#bbbbbb")
            ax.broken_barh(spans, (y + 0.15, 0.7), facecolors=face)
        labels.append(res.policy)
        y += 1
    ax.set_yticks([i + 0.5 for i in range(rows)])
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("hours since start (colour: zone; dark grey: on-demand; red: down)")
    ax.set_title(f"Pool occupancy: {scenario.name}")
    ax.set_xlim(0, scenario.duration_seconds / 3600)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_summary(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Savings against availability, one point per policy, over all scenarios."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    for row in rows:
        ax.scatter(
            row["savings_percent"],
            row["availability_percent"],
            s=60,
            color=COLOURS.get(row["policy"], "#333333"),
            label=row["policy"],
        )
        ax.annotate(
            row["policy"],
            (row["savings_percent"], row["availability_percent"]),
            textcoords="offset points",
            xytext=(5, 4),
            fontsize=8,
        )
    ax.set_xlabel("savings vs on-demand (%)")
    ax.set_ylabel("availability (%)")
    ax.set_title("All scenarios")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_all(
    out: Path,
    results: Sequence[ScenarioResult],
    params: SimulationParams,
    policies: Sequence[str],
    meta: dict[str, Any],
    plots: bool = True,
) -> list[Path]:
    written = [write_json(out / "comparison.json", document(results, params, policies, meta))]
    if plots:
        for r in results:
            name = slug(r.scenario.name)
            written.append(plot_cost(r, out / f"cost-{name}.png"))
            written.append(plot_occupancy(r, out / f"occupancy-{name}.png", params.min_available))
        written.append(plot_summary(totals(results, policies), out / "summary.png"))
    return written


__all__ = ["document", "plot_cost", "plot_occupancy", "plot_summary", "slug", "write_all", "write_json"]
