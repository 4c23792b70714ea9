"""A real agent API server on 127.0.0.1 (free port) with an in-memory sink, for the API and agent tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

from spot_operator.agent_api import (
    DEFAULT_MAX_BODY_BYTES,
    AgentApiServer,
    InMemorySink,
    TokenStore,
    create_app,
)

AGENT = "prod/web"
OTHER_AGENT = "prod/db"
INSTANCE = "i-1234567890abcdef0"  # the IMDS emulator's default instance
OTHER_INSTANCE = "i-0fedcba9876543210"


@dataclass
class Api:
    server: AgentApiServer
    sink: InMemorySink
    tokens: TokenStore
    token: str  # AGENT's
    other_token: str  # OTHER_AGENT's

    @property
    def url(self) -> str:
        return self.server.url

    def path(self, kind: str, agent: str = AGENT) -> str:
        namespace, name = agent.split("/")
        return f"{self.url}/v1/namespaces/{namespace}/agents/{name}/{kind}"


@asynccontextmanager
async def serve_api(port: int = 0, max_body_bytes: int | None = None) -> AsyncIterator[Api]:
    tokens = TokenStore(grace_seconds=600)
    sink = InMemorySink()
    sink.add_instance(AGENT, INSTANCE)
    sink.add_instance(OTHER_AGENT, OTHER_INSTANCE)
    token = tokens.issue(AGENT)
    other = tokens.issue(OTHER_AGENT)
    app = create_app(tokens, sink, max_body_bytes=max_body_bytes or DEFAULT_MAX_BODY_BYTES)
    server = AgentApiServer(app, host="127.0.0.1", port=port)
    await server.start()
    try:
        yield Api(server, sink, tokens, token, other)
    finally:
        await server.stop()


@contextmanager
def api_in_thread() -> Iterator[Api]:
    """The server on its own loop in a thread, for synchronous clients (schemathesis, requests)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Api] = {}
    stop: asyncio.Future[None] = loop.create_future()

    async def main() -> None:
        async with serve_api() as api:
            holder["api"] = api
            ready.set()
            await stop

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the agent API did not start within 10 s")
    try:
        yield holder["api"]
    finally:
        loop.call_soon_threadsafe(stop.set_result, None)
        thread.join(10)
        loop.close()
