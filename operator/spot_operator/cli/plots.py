"""The PNGs of `spotctl prices` and `spotctl savings` (matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

from spot_operator.planning.model import Pool
from spot_operator.ports import AgentSavings, PricePoint
from spot_operator.prices.model import CleanSource, Method


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def is_filled(method: str) -> bool:
    """A point the cleaning made up (linear, weighted, cross-pool) rather than measured."""
    try:
        return Method.parse(method).source is CleanSource.INTERPOLATED
    except KeyError:
        return False


def _with_breaks(points: Sequence[PricePoint], gap: timedelta) -> tuple[list[datetime], list[float]]:
    """Times and prices with a NaN after each hole longer than ``gap``, so the line is cut there."""
    times: list[datetime] = []
    prices: list[float] = []
    for before, point in zip([None, *points[:-1]], points, strict=True):
        if before is not None and point.at - before.at > gap:
            times.append(before.at + gap)
            prices.append(float("nan"))
        times.append(point.at)
        prices.append(point.price)
    return times, prices


def plot_prices(series: Mapping[Pool, Sequence[PricePoint]], path: Path, title: str) -> Path:
    """One step line per pool; filled points marked with hollow circles, holes left as gaps."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 5))
    palette = plt.get_cmap("tab10")
    labelled_fill = False
    for i, (pool, points) in enumerate(sorted(series.items(), key=lambda kv: kv[0].name)):
        if not points:
            continue
        colour = palette(i % 10)
        steps = sorted(b.at - a.at for a, b in pairwise(points)) or [timedelta(minutes=5)]
        times, prices = _with_breaks(points, max(steps[len(steps) // 2], timedelta(minutes=5)) * 1.5)
        ax.step(times, prices, where="post", color=colour, linewidth=1.4, label=pool.name)
        filled = [p for p in points if is_filled(p.method)]
        if filled:
            ax.scatter(
                [p.at for p in filled],
                [p.price for p in filled],
                s=22,
                facecolors="none",
                edgecolors=[colour],
                linewidths=1.0,
                zorder=3,
                label=None if labelled_fill else "filled (interpolated) points",
            )
            labelled_fill = True
    ax.set_ylabel("spot price (USD per hour)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_savings(savings: Sequence[AgentSavings], path: Path, title: str) -> Path:
    """Cumulative savings per agent over its hourly periods, and the total."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 5))
    total: dict[datetime, float] = {}
    for item in savings:
        if not item.hourly:
            continue
        running = 0.0
        times, values = [], []
        for period in item.hourly:
            running += period.saved_usd
            times.append(period.start + timedelta(hours=1))
            values.append(running)
            total[times[-1]] = total.get(times[-1], 0.0) + period.saved_usd
        ax.plot(times, values, linewidth=1.4, label=item.agent)
    if len(savings) > 1 and total:
        stamps = sorted(total)
        running_total = [sum(total[t] for t in stamps[: i + 1]) for i in range(len(stamps))]
        ax.plot(stamps, running_total, color="black", linestyle="--", linewidth=1.6, label="total")
    ax.set_ylabel("saved against on-demand (USD, cumulative)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
