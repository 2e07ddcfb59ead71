"""The hub with its workers served over real HTTP on loopback, for the MCP SDK's own client.

The streamable HTTP transport answers a tool call with an event stream that stays open while the
run goes on; httpx's ASGITransport hands a response over only once it has ended, so the MCP
client talks to uvicorn, as it would to a deployed hub.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.integration.runtime.conftest import (  # noqa: F401 - fixtures, shared with runtime
    connected,
    fake_llm,
    hub,
    runtime_settings,
)

Connect = Callable[[dict[str, str]], AbstractAsyncContextManager[ClientSession]]


@pytest.fixture(scope="package")
async def hub_url(hub: FastAPI) -> AsyncIterator[str]:  # noqa: F811 - the imported fixture
    # The hub's lifespan is already open (the fixture's): uvicorn only serves it.
    config = uvicorn.Config(hub, host="127.0.0.1", port=0, lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "uvicorn stopped before it served"
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await serving


@pytest.fixture
async def hub_client(hub: FastAPI) -> AsyncIterator[AsyncClient]:  # noqa: F811
    async with AsyncClient(transport=ASGITransport(app=hub), base_url="http://opshub") as c:
        yield c


@pytest.fixture
def connect(hub_url: str) -> Connect:
    """An initialized MCP client session with these HTTP headers: the URL and a key, no more."""

    @asynccontextmanager
    async def session(headers: dict[str, str]) -> AsyncIterator[ClientSession]:
        async with (
            httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(30)) as http,
            streamable_http_client(f"{hub_url}/mcp", http_client=http) as (read, write, _),
            ClientSession(read, write) as client,
        ):
            await client.initialize()
            yield client

    return session
