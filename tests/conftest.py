"""Shared fixtures. Each real service a test needs is a plugin module in tests/fakes/."""

from __future__ import annotations

import asyncio
import warnings

import pytest

pytest_plugins = [
    "tests.fakes.moto_server",
    "tests.fakes.postgres",
    "tests.fakes.imds",
    "tests.fakes.kube",
]


def pytest_configure(config: pytest.Config) -> None:
    """Mark the main thread as having no event loop. Python 3.11's ``asyncio.get_event_loop()`` otherwise
    creates one on the fly; pytest-asyncio calls it around each async test, and the loop it creates is
    never closed, so a later test's garbage collection fails on the ResourceWarning (filterwarnings=error).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_event_loop(None)
