"""The MCP client goes through the send-time SSRF guard and sends the server's bearer secret."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from opshub.mcp_servers.client import McpServer, list_tools
from opshub.mcp_servers.errors import McpServerUnreachableError
from tests.fakes.mcp_tools_server import OrderDeskMcpServer

TOKEN = "desk-token-0b8e77c1d2"


@pytest.fixture(scope="module")
def desk() -> Iterator[OrderDeskMcpServer]:
    with OrderDeskMcpServer(token=TOKEN) as server:
        yield server


async def test_a_loopback_server_is_reached_only_where_internal_urls_are_allowed(
    desk: OrderDeskMcpServer,
) -> None:
    allowed = McpServer(name="desk", url=desk.url, secret=TOKEN, allow_internal_urls=True)
    guarded = McpServer(name="desk", url=desk.url, secret=TOKEN, allow_internal_urls=False)

    tools = await list_tools(allowed)

    assert {t.name for t in tools} == {"lookup_order", "refund_order", "delete_all_orders"}
    with pytest.raises(McpServerUnreachableError, match="InternalAddressError"):
        await list_tools(guarded)


async def test_a_wrong_secret_is_refused_and_never_shown(desk: OrderDeskMcpServer) -> None:
    wrong = McpServer(
        name="desk", url=desk.url, secret="not-the-token-1234", allow_internal_urls=True
    )

    with pytest.raises(McpServerUnreachableError) as refused:
        await list_tools(wrong)

    assert "not-the-token" not in str(refused.value) and "desk" in str(refused.value)
