"""How spotctl reads the price store: ``--database-url`` (default ``$DATABASE_URL``), one session per command.

The reads are the storage package's own query functions. A database that cannot be reached, or that has
no spot-optimizer tables, ends the command with one line on stderr and exit code 2.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import typer
from sqlalchemy import exc as sa_exc
from sqlalchemy import make_url
from sqlalchemy.orm import Session

from spot_operator.cli.cluster import UNREACHABLE, fail
from spot_operator.storage.db import make_engine, make_session_factory

T = TypeVar("T")

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="DATABASE_URL",
        help="The operator's database (postgresql://... or sqlite:///path); default: $DATABASE_URL.",
        show_default=False,
    ),
]


def _shown(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sa_exc.ArgumentError:
        return url


def _first_line(error: BaseException) -> str:
    orig = getattr(error, "orig", None)
    text = str(orig if orig is not None else error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def read(url: str | None, query: Callable[[Session], T], connect_timeout: float = 5.0) -> T:
    """Run ``query`` in one read-only transaction on ``url``; fail with one line when that is impossible."""
    if not url:
        fail("no database: pass --database-url or set DATABASE_URL", UNREACHABLE)
    try:
        engine = make_engine(url, connect_timeout=connect_timeout, pool_size=1)
    except (sa_exc.ArgumentError, ValueError) as error:
        fail(f"bad database URL {_shown(url)}: {error}", UNREACHABLE)
    except ModuleNotFoundError as error:
        fail(f"no driver for {_shown(url)}: {error}", UNREACHABLE)
    try:
        with make_session_factory(engine)() as session:
            return query(session)
    except (sa_exc.ProgrammingError, sa_exc.OperationalError) as error:
        text = _first_line(error)
        if ("relation" in text and "does not exist" in text) or "no such table" in text:
            fail(
                f"the database at {_shown(url)} has no spot-optimizer tables ({text}); "
                "is it the operator's database, and migrated?",
                UNREACHABLE,
            )
        fail(f"cannot reach the database at {_shown(url)}: {text}", UNREACHABLE)
    except (sa_exc.DBAPIError, sa_exc.TimeoutError, ConnectionError, TimeoutError) as error:
        fail(f"cannot reach the database at {_shown(url)}: {_first_line(error)}", UNREACHABLE)
    finally:
        engine.dispose()
