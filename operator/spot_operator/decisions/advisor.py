"""The AWS Spot Instance Advisor snapshot: savings and interruption-frequency band per region, OS and type.

The advisor reports, per pool, a band of the *monthly* frequency of interruption (index 0..4 =
``<5%``, ``5-10%``, ``10-15%``, ``15-20%``, ``>20%``). The policy reasons about the probability of an
interruption within a short horizon (default one hour), so a band is converted with a stated assumption:

* each band stands for one representative monthly frequency ``f``: the middle of its range
  (2.5 %, 7.5 %, 12.5 %, 17.5 %) and 30 % for the open-ended ``>20%`` band;
* interruptions arrive at a constant hazard over a month of 730 hours, so the hourly rate is
  ``lambda = -ln(1 - f) / 730`` and the probability within ``h`` hours is ``1 - exp(-lambda * h)``.

That makes the advisor a weak prior: even the worst band means about 0.05 % per hour. Observed
interruptions (which the scorers weigh far more) move the estimate from there.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from spot_operator.decisions.datadir import DataMissing, advisor_path, require

log = logging.getLogger(__name__)

HOURS_PER_MONTH = 730.0
BAND_LABELS = ("<5%", "5-10%", "10-15%", "15-20%", ">20%")
# Representative monthly interruption frequency of each band (see the module docstring).
BAND_MONTHLY_FREQUENCY = (0.025, 0.075, 0.125, 0.175, 0.30)
# The advisor's own headline for all pools ("global_rate": "<10%") when a pool is not listed.
DEFAULT_BAND = 1


def band_hourly_rate(band: int | float | None) -> float:
    """Interruptions per hour implied by a band (``None``/NaN: the default band)."""
    if band is None or (isinstance(band, float) and math.isnan(band)):
        band = DEFAULT_BAND
    index = min(max(int(band), 0), len(BAND_MONTHLY_FREQUENCY) - 1)
    return -math.log1p(-BAND_MONTHLY_FREQUENCY[index]) / HOURS_PER_MONTH


def band_probability(band: int | float | None, horizon_hours: float = 1.0) -> float:
    """Probability of at least one interruption within ``horizon_hours`` under the band's constant hazard."""
    return -math.expm1(-band_hourly_rate(band) * horizon_hours)


@dataclass(frozen=True)
class AdvisorEntry:
    savings_percent: float
    band: int

    @property
    def label(self) -> str:
        return BAND_LABELS[self.band] if 0 <= self.band < len(BAND_LABELS) else "?"


class SpotAdvisor:
    """Lookups into one advisor snapshot."""

    def __init__(self, entries: Mapping[tuple[str, str, str], AdvisorEntry], source: str = "") -> None:
        self._entries = dict(entries)
        self.source = source

    def __len__(self) -> int:
        return len(self._entries)

    def entry(self, region: str, instance_type: str, os: str = "Linux") -> AdvisorEntry | None:
        return self._entries.get((region, os, instance_type))

    def band(self, region: str, instance_type: str, os: str = "Linux") -> int | None:
        found = self.entry(region, instance_type, os)
        return found.band if found else None

    def savings_percent(self, region: str, instance_type: str, os: str = "Linux") -> float | None:
        found = self.entry(region, instance_type, os)
        return found.savings_percent if found else None

    def regions(self) -> list[str]:
        return sorted({r for r, _, _ in self._entries})

    @classmethod
    def from_json(cls, document: Mapping[str, object], source: str = "") -> SpotAdvisor:
        advisor = document.get("spot_advisor")
        if not isinstance(advisor, dict):
            raise ValueError("not a Spot Advisor document: no 'spot_advisor' object")
        entries: dict[tuple[str, str, str], AdvisorEntry] = {}
        for region, by_os in advisor.items():
            if not isinstance(by_os, dict):
                continue
            for os_name, by_type in by_os.items():
                if not isinstance(by_type, dict):
                    continue
                for instance_type, cell in by_type.items():
                    if isinstance(cell, dict) and "s" in cell and "r" in cell:
                        entries[(region, os_name, instance_type)] = AdvisorEntry(
                            float(cell["s"]), int(cell["r"])
                        )
        return cls(entries, source)

    @classmethod
    def load(cls, path: Path | None = None) -> SpotAdvisor:
        """Load the snapshot; raises :class:`DataMissing` with where it looked when the file is absent."""
        path = require(path or advisor_path(), "Spot Advisor data")
        with path.open(encoding="utf-8") as fh:
            return cls.from_json(json.load(fh), str(path))


def maybe_load_advisor(path: Path | None = None) -> SpotAdvisor | None:
    """The advisor, or ``None`` with a warning saying why (scorers then use the default band)."""
    try:
        return SpotAdvisor.load(path)
    except DataMissing as exc:
        log.warning(
            "Spot Advisor data unavailable, using the default band %s: %s", BAND_LABELS[DEFAULT_BAND], exc
        )
        return None


__all__ = [
    "BAND_LABELS",
    "BAND_MONTHLY_FREQUENCY",
    "DEFAULT_BAND",
    "AdvisorEntry",
    "SpotAdvisor",
    "band_hourly_rate",
    "band_probability",
    "maybe_load_advisor",
]
