"""Engines and sessions: PostgreSQL in production, SQLite for the zero-setup sandbox and simulator."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, CursorResult, Engine, Result, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool


def make_engine(url: str, *, connect_timeout: float = 5.0, pool_size: int = 5) -> Engine:
    """An engine for ``url`` (``postgresql://...`` or ``sqlite:///path``, ``sqlite://`` in memory).

    ``connect_timeout`` bounds how long a caller waits for an unreachable server: the write buffer
    and the read paths count on failing fast rather than hanging.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": connect_timeout}}
        if parsed.database in (None, "", ":memory:"):
            # One connection shared by every thread, or each would see its own empty database.
            kwargs["poolclass"] = StaticPool
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(
            f"unsupported database {parsed.get_backend_name()!r}: use postgresql:// or sqlite://"
        )
    if parsed.drivername == "postgresql":
        # SQLAlchemy 2.1 defaults to psycopg 3; we ship psycopg2 (and its COPY API backs bulk ingestion).
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return create_engine(
        parsed,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=pool_size,
        connect_args={"connect_timeout": max(1, round(connect_timeout)), "application_name": "spot-operator"},
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    # expire_on_commit=False: snapshots built after a commit must not trigger a reload.
    return sessionmaker(engine, expire_on_commit=False, autoflush=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back (and re-raised) on error."""
    with factory.begin() as session:
        yield session


def is_postgresql(bind: Session | Connection | Engine) -> bool:
    dialect = bind.get_bind().dialect if isinstance(bind, Session) else bind.dialect
    return dialect.name == "postgresql"


def rowcount(result: Result[Any]) -> int:
    """Rows a DML statement touched (a DML result is always a cursor result)."""
    if not isinstance(result, CursorResult) or result.rowcount < 0:
        raise RuntimeError("the database did not report how many rows the statement touched")
    return int(result.rowcount)
