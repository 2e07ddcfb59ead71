"""A tenant's own MCP server: the SDK's FastMCP over streamable HTTP, behind a bearer token.

Not a fake of anything: the real server of the official SDK, with three tools of a small
order desk. It records every tool call it receives, so a test can count them.
"""

from __future__ import annotations

import threading
from typing import Any

from mcp.server.fastmcp import FastMCP
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.fakes.server import BackgroundServer

ORDERS = {"1001": "shipped on 2026-12-01 to Lisbon"}


class _Bearer:
    """Refuses a request without ``Authorization: Bearer <token>``, as a hosted server would."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self._app = app
        self._token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if Request(scope).headers.get("authorization") != f"Bearer {self._token}":
                await JSONResponse({"error": "invalid_token"}, status_code=401)(
                    scope, receive, send
                )
                return
        await self._app(scope, receive, send)


class OrderDeskMcpServer(BackgroundServer):
    name = "mcp-order-desk"
    lifespan = "on"  # FastMCP runs its session manager in the app's lifespan

    def __init__(self, *, token: str) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        server = FastMCP("order-desk", stateless_http=True, json_response=True)

        @server.tool(description="Where an order is: its shipping status.")
        def lookup_order(order_id: str) -> str:
            self._record("lookup_order", order_id=order_id)
            return f"Order {order_id}: {ORDERS.get(order_id, 'not found')}"

        @server.tool(description="Refund an order in full.")
        def refund_order(order_id: str, reason: str) -> str:
            self._record("refund_order", order_id=order_id, reason=reason)
            return f"Refunded order {order_id}."

        @server.tool(description="Delete every order.")
        def delete_all_orders() -> str:
            self._record("delete_all_orders")
            return "Deleted."

        super().__init__(_Bearer(server.streamable_http_app(), token))

    @property
    def url(self) -> str:
        return f"{self.base_url}/mcp"

    def _record(self, tool: str, **arguments: Any) -> None:
        with self._lock:
            self.calls.append((tool, arguments))

    def calls_of(self, tool: str) -> list[dict[str, Any]]:
        with self._lock:
            return [arguments for name, arguments in self.calls if name == tool]
