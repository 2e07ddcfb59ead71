"""Talk to a tenant's MCP server with the official SDK client (streamable HTTP).

Every connection goes through the send-time SSRF guard (``PublicOnlyTransport``) unless the
operator allows internal URLs, like the hub's other calls to tenant-chosen addresses. Each
listing and each call opens its own short session: a run holds no connection open between the
model's turns, and a server restarted mid-run is simply reached again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.types import TextContent, Tool

from opshub.mcp_servers.errors import McpServerUnreachableError, McpToolFailedError
from opshub.outbound import PublicOnlyTransport

CONNECT_SECONDS = 10.0
CALL_SECONDS = 60.0
HTTP_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


@dataclass(frozen=True)
class McpServer:
    """Where a registered server is reached and with what; ``repr`` leaves the secret out."""

    name: str
    url: str
    secret: str | None = field(default=None, repr=False)
    allow_internal_urls: bool = False


@asynccontextmanager
async def _session(server: McpServer) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {server.secret}"} if server.secret else {}
    transport = None if server.allow_internal_urls else PublicOnlyTransport()
    async with (
        httpx.AsyncClient(
            headers=headers, timeout=HTTP_TIMEOUT, transport=transport, follow_redirects=False
        ) as http,
        streamable_http_client(server.url, http_client=http) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def _unreachable(server: McpServer, exc: BaseException) -> McpServerUnreachableError:
    reason = "it did not answer in time" if isinstance(exc, TimeoutError) else type(exc).__name__
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        reason = type(exc.exceptions[0]).__name__
    return McpServerUnreachableError(f"MCP server '{server.name}' could not be reached ({reason})")


async def list_tools(server: McpServer) -> list[Tool]:
    """Every tool the server offers (all pages)."""
    try:
        with anyio.fail_after(CONNECT_SECONDS):
            async with _session(server) as session:
                tools: list[Tool] = []
                cursor: str | None = None
                while True:
                    page = await session.list_tools(cursor=cursor)
                    tools.extend(page.tools)
                    cursor = page.nextCursor
                    if not cursor:
                        return tools
    except Exception as exc:
        raise _unreachable(server, exc) from None


async def call_tool(server: McpServer, tool: str, arguments: dict[str, Any]) -> str:
    """The tool's answer as text; a tool that reports an error raises ``McpToolFailedError``."""
    try:
        with anyio.fail_after(CALL_SECONDS):
            async with _session(server) as session:
                result = await session.call_tool(tool, arguments)
    except Exception as exc:
        raise _unreachable(server, exc) from None
    text = "\n".join(
        item.text if isinstance(item, TextContent) else f"[{item.type} content]"
        for item in result.content
    )
    if server.secret:  # a server echoing its token back must not put it in a result or a log
        text = text.replace(server.secret, "[redacted]")
    if result.isError:
        raise McpToolFailedError(f"{tool} on MCP server '{server.name}' failed: {text}")
    return text
