"""PostgreSQL's binary COPY format, both ways, without a Python object per row.

Writing: fixed-width tuples built as a numpy record array (``COPY ... FROM STDIN``).
Reading (``COPY (query) TO STDOUT``): fixed-width tuples as a record array, or rows of one ``int4``
key and a few ``bytea`` columns of packed 8-byte values (``string_agg(float8send(x), '')``), so a
series of thousands of points costs one row and a few ``np.frombuffer`` views.
"""

from __future__ import annotations

import io
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session

PG_EPOCH_US: Final = 946_684_800_000_000  # PostgreSQL binary timestamps count µs from 2000-01-01
SIGNATURE: Final = b"PGCOPY\n\xff\r\n\x00"
_HEADER: Final = SIGNATURE + b"\x00" * 8  # flags, header extension length
_TRAILER: Final = b"\xff\xff"
_VALUE: Final = np.dtype(">i8")


class CopyFormatError(RuntimeError):
    """The server's COPY output is not what the query was written to produce."""


def binary_copy(records: npt.NDArray[np.void]) -> io.BytesIO:
    """A COPY ... (FORMAT binary) stream: header, fixed-width tuples, trailer."""
    return io.BytesIO(_HEADER + records.tobytes() + _TRAILER)


def copy_in(session: Session, table: str, columns: str, stream: io.BytesIO) -> None:
    cursor = _cursor(session)
    try:
        cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT binary)", stream)
    finally:
        cursor.close()


class _Sink:
    """A file for ``copy_expert`` whose ``write`` is ``list.append``: one C call per row."""

    __slots__ = ("write",)


def copy_out(session: Session, query: str) -> bytes:
    """The binary COPY output of ``query`` (already bound: see ``cursor.mogrify``)."""
    chunks: list[bytes] = []
    sink = _Sink()
    sink.write = chunks.append  # type: ignore[attr-defined]
    cursor = _cursor(session)
    try:
        cursor.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT binary)", sink)
    finally:
        cursor.close()
    return b"".join(chunks)


def mogrify(session: Session, sql: str, params: dict[str, object]) -> str:
    """``sql`` with ``%(name)s`` placeholders bound by the driver, as COPY takes no parameters."""
    cursor = _cursor(session)
    try:
        bound: bytes = cursor.mogrify(sql, params)
        return bound.decode()
    finally:
        cursor.close()


def fixed_rows(data: bytes, dtype: np.dtype[np.void]) -> npt.NDArray[np.void]:
    """Parse tuples of fixed-width NOT NULL columns (``dtype`` spells the field count and lengths)."""
    body = _body(data)
    if len(body) % dtype.itemsize:
        raise CopyFormatError(f"{len(body)} bytes of tuples are not a multiple of {dtype.itemsize}")
    return np.frombuffer(body, dtype)


def packed_rows(data: bytes, columns: int) -> dict[int, list[npt.NDArray[np.int64]]]:
    """Parse rows of ``(int4 key, bytea, ..., bytea)`` whose bytea hold packed big-endian 8-byte values
    (``float8send``, ``timestamptz_send``): each column's values by key, as native ``int64`` bit
    patterns; :func:`as_float64` and :func:`as_epoch_seconds` give them their type. A NULL column, or
    one whose length is not a multiple of 8, raises."""
    view = _body(data)
    pos = 0
    out: dict[int, list[npt.NDArray[np.int64]]] = {}
    while pos < len(view):
        fields = _int(view, pos, 2)
        if fields != columns + 1 or _int(view, pos + 2) != 4:
            raise CopyFormatError(f"expected an int4 key and {columns} bytea columns, got {fields} fields")
        key = _int(view, pos + 6)
        pos += 10
        values: list[npt.NDArray[np.int64]] = []
        for _ in range(columns):
            length = _int(view, pos)
            if length < 0:
                raise CopyFormatError(f"row {key}: a NULL column")
            if length % _VALUE.itemsize:
                raise CopyFormatError(f"row {key}: {length} bytes are not whole 8-byte values")
            if pos + 4 + length > len(view):
                raise CopyFormatError("binary COPY stream ends early")
            count = length // _VALUE.itemsize
            values.append(np.frombuffer(view, _VALUE, count=count, offset=pos + 4).astype(np.int64))
            pos += 4 + length
        out[key] = values
    return out


def as_float64(raw: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    return raw.view(np.float64)


def as_epoch_seconds(raw: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """``timestamptz`` values (µs since 2000-01-01) as seconds since 1970-01-01."""
    return (raw + PG_EPOCH_US) / 1e6


def _body(data: bytes) -> memoryview:
    """The tuples between the header (and its extension) and the trailer."""
    if not data.startswith(SIGNATURE) or not data.endswith(_TRAILER):
        raise CopyFormatError("not a complete binary COPY stream")
    view = memoryview(data)
    start = len(SIGNATURE) + 8 + _int(view, len(SIGNATURE) + 4)
    return view[start : len(data) - len(_TRAILER)]


def _int(view: memoryview, pos: int, size: int = 4) -> int:
    if pos + size > len(view):
        raise CopyFormatError("binary COPY stream ends early")
    return int.from_bytes(view[pos : pos + size], "big", signed=True)


def _cursor(session: Session) -> Any:  # psycopg2's cursor: copy_expert and mogrify are not DB-API
    dbapi = session.connection().connection.dbapi_connection
    if dbapi is None:
        raise RuntimeError("the session's connection is closed")
    return dbapi.cursor()
