"""The binary COPY reader: well-formed streams parse; anything unexpected raises instead of misreading."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from spot_operator.storage import pgbinary
from spot_operator.storage.pgbinary import CopyFormatError, fixed_rows, packed_rows
from spot_operator.storage.series import PriceArrays, in_time_order

HEADER = pgbinary.SIGNATURE + struct.pack(">ii", 0, 0)
TRAILER = b"\xff\xff"


def packed(values: list[float]) -> bytes:
    """A bytea column as string_agg(float8send(x), '') sends it: length, then the packed values."""
    body = b"".join(struct.pack(">d", v) for v in values)
    return struct.pack(">i", len(body)) + body


def row(key: int, *columns: bytes) -> bytes:
    return struct.pack(">hii", 1 + len(columns), 4, key) + b"".join(columns)


def test_rows_of_packed_values_parse_to_their_values() -> None:
    rows = row(7, packed([1.5, 2.25]), packed([0.95, 1.0])) + row(9, packed([]), packed([]))
    out = packed_rows(HEADER + rows + TRAILER, 2)
    assert sorted(out) == [7, 9]
    assert pgbinary.as_float64(out[7][0]).tolist() == [1.5, 2.25]
    assert pgbinary.as_float64(out[7][1]).tolist() == [0.95, 1.0]
    assert [len(c) for c in out[9]] == [0, 0]


def test_a_header_extension_is_skipped() -> None:
    data = pgbinary.SIGNATURE + struct.pack(">ii", 0, 3) + b"abc" + row(1, packed([4.0])) + TRAILER
    assert pgbinary.as_float64(packed_rows(data, 1)[1][0]).tolist() == [4.0]


def test_timestamps_count_from_2000() -> None:
    raw = np.array([0, 1_500_000], np.int64)
    assert pgbinary.as_epoch_seconds(raw).tolist() == [946_684_800.0, 946_684_801.5]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"COPY\n" + row(1, packed([1.0])) + TRAILER, "not a complete"),
        (HEADER + row(1, packed([1.0])), "not a complete"),
        (HEADER + row(1, packed([1.0, 2.0]))[:-3] + TRAILER, "not whole 8-byte values|ends early"),
        (HEADER + row(1, packed([1.0]))[:-8] + TRAILER, "ends early"),
        (HEADER + row(1, packed([1.0]), packed([1.0])) + TRAILER, "an int4 key and 1 bytea columns"),
        (HEADER + struct.pack(">hii", 2, 4, 1) + struct.pack(">i", -1) + TRAILER, "NULL"),
        (HEADER + struct.pack(">hii", 2, 4, 1) + struct.pack(">i", 4) + b"abcd" + TRAILER, "not whole"),
        (HEADER + struct.pack(">hii", 2, 8, 1) + TRAILER, "an int4 key"),
    ],
)
def test_malformed_streams_raise(data: bytes, message: str) -> None:
    with pytest.raises(CopyFormatError, match=message):
        packed_rows(data, 1)


def test_fixed_rows_check_the_width() -> None:
    dtype = np.dtype([("n", ">i2"), ("l", ">i4"), ("v", ">i4")])
    good = HEADER + struct.pack(">hii", 1, 4, 42) * 2 + TRAILER
    assert fixed_rows(good, dtype)["v"].tolist() == [42, 42]
    with pytest.raises(CopyFormatError, match="not a multiple"):
        fixed_rows(good[:-3] + TRAILER, dtype)


def test_a_series_out_of_time_order_is_sorted_with_its_prices() -> None:
    ordered = PriceArrays(np.array([1.0, 2.0]), np.array([0.1, 0.2]), np.array([1.0, 0.95]))
    assert in_time_order(ordered) is ordered
    shuffled = in_time_order(PriceArrays(np.array([3.0, 1.0, 2.0]), np.array([0.3, 0.1, 0.2]), np.ones(3)))
    assert shuffled.times.tolist() == [1.0, 2.0, 3.0] and shuffled.prices.tolist() == [0.1, 0.2, 0.3]
