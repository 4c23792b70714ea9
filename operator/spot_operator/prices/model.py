"""The vocabulary of price history: where a raw price came from and how a clean point was made."""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Final

BUCKET_SECONDS: Final = 300
"""The clean series has one point per pool and product every 5 minutes, aligned on the epoch."""


class RawSource(IntEnum):
    """Who reported a raw price. Stored as a small integer; lower is more authoritative (see cleaning)."""

    AWS_API = 0
    AGENT_PRIMARY = 1
    AGENT_REPLICA = 2

    @property
    def wire(self) -> str:
        return _RAW_WIRE[self]

    @classmethod
    def parse(cls, name: str) -> RawSource:
        try:
            return _RAW_BY_WIRE[name]
        except KeyError:
            raise ValueError(
                f"unknown price source {name!r}: expected one of {sorted(_RAW_BY_WIRE)}"
            ) from None


_RAW_WIRE: Final = {
    RawSource.AWS_API: "aws-api",
    RawSource.AGENT_PRIMARY: "agent-primary",
    RawSource.AGENT_REPLICA: "agent-replica",
}
_RAW_BY_WIRE: Final = {v: k for k, v in _RAW_WIRE.items()}


class CleanSource(StrEnum):
    MEASURED = "measured"
    INTERPOLATED = "interpolated"


class Method(IntEnum):
    """How a clean point was made. The integer is the code used in arrays; ``name`` is stored."""

    OBSERVED = 0  # a raw price was reported inside the bucket
    HELD = 1  # an aws-api price still in force: AWS publishes changes only (see cleaning)
    AVERAGED = 2  # two sources disagreed by more than the tolerance: their mean, flagged
    LINEAR = 3  # short gap (<= 10 min): straight line between the neighbours
    WEIGHTED = 4  # medium gap (<= 30 min): inverse-distance weighted mean of the surrounding points
    CROSS_POOL = 5  # long gap (<= 4 h): the sibling zones' median relative move applied

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")

    @classmethod
    def parse(cls, label: str) -> Method:
        return cls[label.upper().replace("-", "_")]

    @property
    def source(self) -> CleanSource:
        return CleanSource.MEASURED if self <= Method.AVERAGED else CleanSource.INTERPOLATED


class Flag(IntEnum):
    """Bits of a clean point's flags."""

    DISAGREEMENT = 1  # the two best sources in the bucket differed by more than the tolerance


def flag_labels(bits: int) -> tuple[str, ...]:
    return tuple(f.name.lower() for f in Flag if bits & f)


def flag_bits(labels: str) -> int:
    bits = 0
    for label in filter(None, labels.split(",")):
        bits |= Flag[label.upper()]
    return bits
