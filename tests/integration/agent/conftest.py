from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.agent_api.harness import Api, serve_api


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    async with serve_api() as running:
        yield running
