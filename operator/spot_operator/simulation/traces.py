"""Spot availability and preemption traces (the ``spot-traces`` format) and the scenarios replayed from them.

A trace file is ``<zone>_<gpu tag>.json`` holding ``{"metadata": {"gap_seconds": N}, "data": [...]}``:
one count per tick of obtainable (availability traces) or running (preemption traces) instances. A
pool counts as available while the count is at least ``min_available`` (default 1: our workload is one
instance); a change from available to unavailable is a reclaim.

A *scenario* is one data set folder and one instance type: its zones are the candidate pools of one
simulated SpotAgent, replayed over the time all of them were observed. A SpotAgent is regional, so
when a data set mixes regions its zones are renamed to zones of one simulated region (``us-sim-1a``,
``us-sim-1b``, ...) and each keeps its original zone for prices; read those results as independent
pools (an Elastic IP cannot follow a primary across regions).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt

from spot_operator.decisions.datadir import require, traces_dir
from spot_operator.decisions.features import AvailabilityHistory, to_epoch
from spot_operator.planning.model import Pool

IntArray = npt.NDArray[np.int64]

# The GPU/CPU tag in a file name -> the EC2 instance type (as the data README maps them).
TYPE_BY_TAG: dict[str, str] = {
    "v100_1": "p3.2xlarge",
    "v100_8": "p3.16xlarge",
    "k80_1": "p2.xlarge",
    "k80_8": "p2.8xlarge",
    "intel_64": "r5.16xlarge",
}
SIMULATED_REGION = "us-sim-1"
_NAME = re.compile(r"^(?P<zone>[a-z]{2}-[a-z]+-\d+[a-z])_(?P<tag>[a-z0-9_]+)\.json$")
_DATE = re.compile(r"(\d{2})-(\d{2})-(\d{4})$")


@dataclass(frozen=True)
class Trace:
    dataset: str  # e.g. "availability/1-node/aws-10-26-2022"
    zone: str
    tag: str
    instance_type: str
    gap_seconds: float
    counts: IntArray
    start: datetime

    @property
    def kind(self) -> str:
        return self.dataset.split("/", 1)[0]

    @property
    def region(self) -> str:
        return self.zone[:-1]

    @property
    def duration_seconds(self) -> float:
        return float(self.counts.size * self.gap_seconds)


def dataset_start(dataset: str) -> datetime:
    """'.../aws-10-26-2022' -> 2022-10-26 00:00 UTC (the traces say nothing finer)."""
    found = _DATE.search(dataset)
    if not found:
        return datetime(2023, 1, 1, tzinfo=UTC)
    month, day, year = (int(g) for g in found.groups())
    return datetime(year, month, day, tzinfo=UTC)


def load_trace(path: Path, root: Path) -> Trace:
    match = _NAME.match(path.name)
    if not match:
        raise ValueError(f"{path}: expected '<zone>_<tag>.json'")
    tag = match["tag"]
    if tag not in TYPE_BY_TAG:
        raise ValueError(f"{path}: unknown instance tag {tag!r} (known: {', '.join(sorted(TYPE_BY_TAG))})")
    with path.open(encoding="utf-8") as fh:
        doc = json.load(fh)
    gap = float(doc["metadata"]["gap_seconds"])
    if gap <= 0:
        raise ValueError(f"{path}: gap_seconds must be positive")
    counts = np.asarray(doc["data"], dtype=np.int64)
    counts.setflags(write=False)
    dataset = path.parent.relative_to(root).as_posix()
    return Trace(dataset, match["zone"], tag, TYPE_BY_TAG[tag], gap, counts, dataset_start(dataset))


def load_traces(root: Path | None = None) -> list[Trace]:
    """Every trace file under ``root`` (default: the shared data's ``spot-traces``), in a stable order."""
    root = require(root or traces_dir(), "spot traces")
    files = sorted(p for p in root.rglob("*.json") if _NAME.match(p.name))
    if not files:
        raise ValueError(f"no trace files ('<zone>_<tag>.json') under {root}")
    return [load_trace(p, root) for p in files]


@dataclass(frozen=True)
class Scenario:
    """One simulated SpotAgent's market: one instance type in the zones of one data set."""

    name: str
    dataset: str
    instance_type: str
    region: str
    start: datetime
    gap_seconds: float
    counts: Mapping[Pool, IntArray]
    original_zone: Mapping[Pool, str] = field(default_factory=dict)
    note: str = ""

    @property
    def pools(self) -> tuple[Pool, ...]:
        return tuple(sorted(self.counts))

    @property
    def zones(self) -> tuple[str, ...]:
        return tuple(p.zone for p in self.pools)

    @property
    def ticks(self) -> int:
        return min(len(c) for c in self.counts.values())

    @property
    def duration_seconds(self) -> float:
        return self.ticks * self.gap_seconds

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.duration_seconds)

    def original_region(self, pool: Pool) -> str:
        return self.original_zone.get(pool, pool.zone)[:-1]

    def label(self, pool: Pool) -> str:
        original = self.original_zone.get(pool, pool.zone)
        return pool.zone if original == pool.zone else f"{pool.zone} ({original})"

    def availability(self, pool: Pool, min_available: int = 1) -> AvailabilityHistory:
        return AvailabilityHistory.from_samples(
            to_epoch(self.start), self.gap_seconds, self.counts[pool][: self.ticks], min_available
        )

    def availabilities(self, min_available: int = 1) -> dict[Pool, AvailabilityHistory]:
        return {p: self.availability(p, min_available) for p in self.pools}

    def truncated(self, days: float) -> Scenario:
        ticks = max(1, min(self.ticks, int(days * 86400 // self.gap_seconds)))
        counts = {p: c[:ticks] for p, c in self.counts.items()}
        return Scenario(
            self.name,
            self.dataset,
            self.instance_type,
            self.region,
            self.start,
            self.gap_seconds,
            counts,
            self.original_zone,
            self.note,
        )


def scenarios(traces: Iterable[Trace]) -> list[Scenario]:
    """Group traces by (data set, instance type); rename zones into one region when they span several."""
    groups: dict[tuple[str, str], list[Trace]] = {}
    for trace in traces:
        groups.setdefault((trace.dataset, trace.instance_type), []).append(trace)
    out = []
    for (dataset, instance_type), members in sorted(groups.items()):
        members.sort(key=lambda t: t.zone)
        gaps = {t.gap_seconds for t in members}
        if len(gaps) != 1:
            raise ValueError(f"{dataset} {instance_type}: traces disagree on gap_seconds ({sorted(gaps)})")
        regions = {t.region for t in members}
        notes = []
        if len(regions) == 1:
            region = members[0].region
            names = [t.zone for t in members]
        else:
            region = SIMULATED_REGION
            names = [f"{SIMULATED_REGION}{chr(ord('a') + i)}" for i in range(len(members))]
            notes.append("zones of " + ", ".join(sorted(regions)) + f" replayed as zones of {region}")
        lengths = {len(t.counts) for t in members}
        if len(lengths) > 1:
            notes.append(
                f"traces of {min(lengths)}..{max(lengths)} ticks: replayed over the common {min(lengths)}"
            )
        counts = {Pool(instance_type, name): t.counts for name, t in zip(names, members, strict=True)}
        original = {Pool(instance_type, name): t.zone for name, t in zip(names, members, strict=True)}
        out.append(
            Scenario(
                name=f"{dataset}:{instance_type}",
                dataset=dataset,
                instance_type=instance_type,
                region=region,
                start=members[0].start,
                gap_seconds=gaps.pop(),
                counts=counts,
                original_zone=original,
                note="; ".join(notes),
            )
        )
    return out


def tiled(base: Iterable[Scenario], days: float, zones: int, region: str = SIMULATED_REGION) -> Scenario:
    """A long, wide scenario for benchmarks: traces of one type resampled to a common gap and repeated.

    Each zone takes a different trace (cycling through them with an offset) and repeats it end to end
    until ``days`` are covered. Used when the real traces are shorter or narrower than a benchmark needs.
    """
    sources = [(s, p) for s in base for p in s.pools]
    if not sources:
        raise ValueError("no traces to tile")
    gap = min(s.gap_seconds for s, _ in sources)
    gap = max(gap, 60.0)
    ticks = int(days * 86400 // gap)
    counts: dict[Pool, IntArray] = {}
    original: dict[Pool, str] = {}
    instance_type = sources[0][0].instance_type
    for i in range(zones):
        scenario, pool = sources[i % len(sources)]
        raw = scenario.counts[pool][: scenario.ticks]
        # Resample to the common gap (nearest earlier tick), then repeat with a per-zone offset.
        idx = (np.arange(int(scenario.duration_seconds // gap)) * gap / scenario.gap_seconds).astype(np.int64)
        series = raw[np.clip(idx, 0, raw.size - 1)]
        offset = (i // len(sources)) * (series.size // 3 + 1)
        reps = (ticks + offset) // series.size + 1
        tiled_counts = np.tile(series, reps)[offset : offset + ticks].astype(np.int64)
        name = f"{region}{chr(ord('a') + i)}" if i < 26 else f"{region}z{i}"
        sim_pool = Pool(instance_type, name)
        counts[sim_pool] = tiled_counts
        original[sim_pool] = scenario.original_zone.get(pool, pool.zone)
    first = sources[0][0]
    return Scenario(
        name=f"tiled:{days:g}d:{zones}z:{instance_type}",
        dataset="tiled",
        instance_type=instance_type,
        region=region,
        start=first.start,
        gap_seconds=gap,
        counts=counts,
        original_zone=original,
        note=f"{len(sources)} real traces resampled to {gap:g}s, repeated to {days:g} days x {zones} zones",
    )


__all__ = [
    "SIMULATED_REGION",
    "TYPE_BY_TAG",
    "Scenario",
    "Trace",
    "dataset_start",
    "load_traces",
    "scenarios",
    "tiled",
]
