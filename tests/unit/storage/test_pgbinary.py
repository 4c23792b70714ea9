"""The binary COPY reader: well-formed streams parse; anything unexpected raises instead of misreading."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from spot_operator.storage import pgbinary
from spot_operator.storage.pgbinary import CopyFormatError, array_rows, fixed_rows

HEADER = pgbinary.SIGNATURE + struct.pack(">ii", 0, 0)
TRAILER = b"\xff\xff"


def array(values: list[float], *, ndim: int = 1, nulls: int = 0, width: int = 8) -> bytes:
    if ndim == 0:
        body = struct.pack(">iii", 0, 0, 701)
        return struct.pack(">i", len(body)) + body
    body = struct.pack(">iiiii", ndim, nulls, 701, len(values), 1)
    body += b"".join(struct.pack(">i", width) + struct.pack(">d", v)[:width] for v in values)
    return struct.pack(">i", len(body)) + body


def row(key: int, *arrays: bytes) -> bytes:
    return struct.pack(">hii", 1 + len(arrays), 4, key) + b"".join(arrays)


def test_rows_of_arrays_parse_to_their_values() -> None:
    data = (
        HEADER
        + row(7, array([1.5, 2.25]), array([0.95, 1.0]))
        + row(9, array([]), array([], ndim=0))
        + TRAILER
    )
    out = array_rows(data, 2)
    assert sorted(out) == [7, 9]
    assert pgbinary.as_float64(out[7][0]).tolist() == [1.5, 2.25]
    assert pgbinary.as_float64(out[7][1]).tolist() == [0.95, 1.0]
    assert [len(c) for c in out[9]] == [0, 0]


def test_a_header_extension_is_skipped() -> None:
    data = pgbinary.SIGNATURE + struct.pack(">ii", 0, 3) + b"abc" + row(1, array([4.0])) + TRAILER
    assert pgbinary.as_float64(array_rows(data, 1)[1][0]).tolist() == [4.0]


def test_timestamps_count_from_2000() -> None:
    raw = np.array([0, 1_500_000], np.int64)
    assert pgbinary.as_epoch_seconds(raw).tolist() == [946_684_800.0, 946_684_801.5]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"COPY\n" + row(1, array([1.0])) + TRAILER, "not a complete"),
        (HEADER + row(1, array([1.0])), "not a complete"),
        (HEADER + row(1, array([1.0]))[:-3] + TRAILER, "ends early|not 8 bytes"),
        (HEADER + row(1, array([1.0]), array([1.0])) + TRAILER, "expected an int4 key and 1 arrays"),
        (HEADER + row(1, array([1.0], ndim=2)) + TRAILER, "nested"),
        (HEADER + row(1, array([1.0], nulls=1)) + TRAILER, "NULL"),
        (HEADER + row(1, array([1.0], width=4)) + TRAILER, "not 8 bytes"),
        (HEADER + struct.pack(">hii", 2, 4, 1) + struct.pack(">i", -1) + TRAILER, "NULL"),
    ],
)
def test_malformed_streams_raise(data: bytes, message: str) -> None:
    with pytest.raises(CopyFormatError, match=message):
        array_rows(data, 1)


def test_fixed_rows_check_the_width() -> None:
    dtype = np.dtype([("n", ">i2"), ("l", ">i4"), ("v", ">i4")])
    good = HEADER + struct.pack(">hii", 1, 4, 42) * 2 + TRAILER
    assert fixed_rows(good, dtype)["v"].tolist() == [42, 42]
    with pytest.raises(CopyFormatError, match="not a multiple"):
        fixed_rows(good[:-3] + TRAILER, dtype)
