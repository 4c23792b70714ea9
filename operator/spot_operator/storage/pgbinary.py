"""PostgreSQL's binary COPY format, both ways, without a Python object per row.

Writing: fixed-width tuples built as a numpy record array (``COPY ... FROM STDIN``).
Reading: rows of one ``int4`` key and a few one-dimensional arrays of 8-byte values
(``float8[]``, ``timestamptz[]``), so a series of thousands of points costs one row and a few
``np.frombuffer`` views (``COPY (query) TO STDOUT``).
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
_ELEMENT: Final = np.dtype([("length", ">i4"), ("value", ">i8")])
_ARRAY_HEADER: Final = 20  # ndim, has-nulls flag, element type, then one (size, lower bound) pair


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


def array_rows(data: bytes, arrays: int) -> dict[int, list[npt.NDArray[np.int64]]]:
    """Parse rows of ``(int4 key, array, ..., array)``: each array's raw 8-byte values by key.

    Values come back as big-endian 8-byte integers reinterpreted as native ``int64``; use
    :func:`as_float64` or :func:`as_epoch_seconds` for the column's real type. Arrays must be
    one-dimensional without NULLs (``array_agg`` of NOT NULL columns); anything else raises.
    """
    view = _body(data)
    pos = 0
    out: dict[int, list[npt.NDArray[np.int64]]] = {}
    while pos < len(view):
        fields = _int(view, pos, 2)
        if fields != arrays + 1 or _int(view, pos + 2) != 4:
            raise CopyFormatError(f"expected an int4 key and {arrays} arrays, got {fields} fields")
        key = _int(view, pos + 6)
        pos += 10
        columns: list[npt.NDArray[np.int64]] = []
        for _ in range(arrays):
            columns.append(_array(view, pos, key))
            pos += 4 + _int(view, pos)
        out[key] = columns
    return out


def _array(view: memoryview, pos: int, key: int) -> npt.NDArray[np.int64]:
    """The one-dimensional array of 8-byte values whose length word is at ``pos``."""
    length = _int(view, pos)
    if length < 0:
        raise CopyFormatError(f"row {key}: a NULL array")
    ndim, has_nulls = _int(view, pos + 4), _int(view, pos + 8)
    if ndim not in (0, 1) or has_nulls:
        raise CopyFormatError(f"row {key}: a nested or NULL-holding array")
    if ndim == 0:  # PostgreSQL's empty array: no dimensions at all
        return np.empty(0, np.int64)
    size = _int(view, pos + 16)
    if length != _ARRAY_HEADER + size * _ELEMENT.itemsize:
        raise CopyFormatError(f"row {key}: array elements are not 8 bytes wide")
    if pos + 4 + length > len(view):
        raise CopyFormatError("binary COPY stream ends early")
    elements = np.frombuffer(view, _ELEMENT, count=size, offset=pos + 4 + _ARRAY_HEADER)
    if (elements["length"] != 8).any():
        raise CopyFormatError(f"row {key}: array elements are not 8 bytes wide")
    return elements["value"].astype(np.int64)


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
