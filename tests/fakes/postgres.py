"""A real PostgreSQL server for the storage tests, and a throwaway database per test module.

Where the server comes from, first that works:
1. ``DATABASE_URL`` (its server; test databases are created next to the one it names);
2. a server on 127.0.0.1:5432 (user ``postgres``, trust auth, as on the development machines);
3. a throwaway cluster from the PostgreSQL binaries (``initdb`` refuses root: run as ``postgres``)
   in a temporary directory on a free port, stopped and removed at the end of the session.
Without any of them the tests that need PostgreSQL are skipped, with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker

from spot_operator.storage.db import make_engine, make_session_factory
from spot_operator.storage.models import Base


def _reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _admin_url(url: str) -> URL:
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed


def _server_answers(url: URL) -> str | None:
    """None if we can log in and create databases there, else why not."""
    engine = create_engine(url.set(database="postgres"), connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            can = conn.execute(
                text("SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user")
            ).scalar()
            return None if can else f"{url.username} may not create databases"
    except Exception as exc:  # any failure to log in is a reason to try the next option
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    finally:
        engine.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _throwaway_cluster() -> Iterator[URL | str]:
    """Yields the URL of a fresh cluster, or a string saying why there is none."""
    initdbs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not initdbs:
        yield "no PostgreSQL binaries under /usr/lib/postgresql/*/bin"
        return
    bindir = Path(initdbs[-1]).parent
    root = tempfile.mkdtemp(prefix="spot-pg-")
    datadir = os.path.join(root, "data")
    port = _free_port()
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            yield "running as root and runuser is missing (initdb refuses root)"
            return
        shutil.chown(root, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    os.chmod(root, 0o700)
    started = False
    try:
        subprocess.run(
            [
                *as_postgres,
                str(bindir / "initdb"),
                "-D",
                datadir,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
            check=True,
            capture_output=True,
        )
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [
                *as_postgres,
                str(bindir / "pg_ctl"),
                "-D",
                datadir,
                "-o",
                options,
                "-l",
                f"{root}/log",
                "-w",
                "start",
            ],
            check=True,
            capture_output=True,
        )
        started = True
        yield URL.create(
            "postgresql+psycopg2", username="postgres", host="127.0.0.1", port=port, database="postgres"
        )
    except subprocess.CalledProcessError as exc:
        yield f"throwaway cluster failed: {exc.stderr.decode(errors='replace').strip()[:300]}"
    finally:
        if started:
            subprocess.run(
                [*as_postgres, str(bindir / "pg_ctl"), "-D", datadir, "-m", "immediate", "stop"],
                check=False,
                capture_output=True,
            )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a PostgreSQL server's maintenance database, on which test databases are made."""
    reasons: list[str] = []
    env = os.environ.get("DATABASE_URL")
    if env:
        url = _admin_url(env)
        problem = _server_answers(url)
        if problem is None:
            yield url.set(database="postgres").render_as_string(hide_password=False)
            return
        reasons.append(f"DATABASE_URL: {problem}")
    if _reachable("127.0.0.1", 5432):
        url = URL.create(
            "postgresql+psycopg2", username="postgres", host="127.0.0.1", port=5432, database="postgres"
        )
        problem = _server_answers(url)
        if problem is None:
            yield url.render_as_string(hide_password=False)
            return
        reasons.append(f"127.0.0.1:5432: {problem}")
    else:
        reasons.append("nothing listens on 127.0.0.1:5432")
    with _throwaway_cluster() as cluster:
        if isinstance(cluster, URL):
            yield cluster.render_as_string(hide_password=False)
            return
        reasons.append(cluster)
    pytest.skip("no PostgreSQL server: " + "; ".join(reasons))


@contextlib.contextmanager
def scratch_database(server_url: str, migrate: bool = True) -> Iterator[str]:
    """A new database ``spot_test_<random>`` on the server (migrated to head), dropped afterwards."""
    from spot_operator.storage.migrate import upgrade_to_head

    server = make_url(server_url)
    name = f"spot_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = server.set(database=name).render_as_string(hide_password=False)
        try:
            if migrate:
                upgrade_to_head(url)
            yield url
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(scope="module")
def database_url(postgres_url: str) -> Iterator[str]:
    """A fresh database migrated to head, for one test module."""
    with scratch_database(postgres_url) as url:
        yield url


@pytest.fixture
def empty_database_url(postgres_url: str) -> Iterator[str]:
    """A fresh database with no schema at all, for migration tests."""
    with scratch_database(postgres_url, migrate=False) as url:
        yield url


class TcpProxy:
    """A TCP forwarder that can refuse connections (an outage) and then serve again.

    While down nothing listens on the port, so clients get "connection refused", exactly as when a
    database server is stopped; open connections are cut too.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = _free_port()
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    @property
    def up(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except ConnectionError:
            pass
        finally:
            dst.close()


@pytest.fixture
async def postgres_proxy(database_url: str) -> AsyncIterator[TcpProxy]:
    """A proxy in front of the test database's server, created down (refusing connections)."""
    url = make_url(database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    try:
        yield proxy
    finally:
        await proxy.stop()


@pytest.fixture(scope="module")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """A session factory on an emptied (migrated) database."""
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return make_session_factory(engine)
