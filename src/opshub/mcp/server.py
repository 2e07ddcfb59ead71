"""The MCP server at ``/mcp``: streamable HTTP, stateless, behind the API's authentication.

Stateless, because the API is: any API process answers any request, so a client needs no
sticky session, and every request carries (and is checked for) its own bearer credential. The
SDK's DNS-rebinding check is off: it guards unauthenticated servers on a developer's machine
against browsers, and a browser never sends this endpoint's Authorization header on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp

from opshub.mcp import resources, tools
from opshub.mcp.access import Authenticated
from opshub.mcp.errors import EnvelopedFastMCP

PATH = "/mcp"
INSTRUCTIONS = (
    "opshub runs crews of AI agents for marketing, analytics, e-commerce and operations work. "
    "list_crews says what each crew can do; run_crew hands one a task in plain language and "
    "reports its steps as progress; a crew never changes the world on its own: it proposes "
    "changes that wait for an owner's or admin's decision (list_pending_approvals, "
    "decide_approval). A task's full trace is the resource opshub://tasks/{task_id}/trace."
)


class McpEndpoint:
    """The MCP server's ASGI app for the route at ``/mcp``, and the lifespan it needs."""

    path = PATH

    def __init__(self) -> None:
        server = EnvelopedFastMCP(
            "opshub",
            instructions=INSTRUCTIONS,
            stateless_http=True,
            streamable_http_path=PATH,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        tools.register(server)
        resources.register(server)
        self.app: ASGIApp = Authenticated(server.streamable_http_app())
        self._server = server

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The streamable HTTP transport's task group, for the app's lifetime.

        The group lives in a task of its own: an anyio task group must be left by the task that
        entered it, and not every host ends a lifespan in the task that began it.
        """
        started, stop = asyncio.Event(), asyncio.Event()

        async def hold() -> None:
            async with self._server.session_manager.run():
                started.set()
                await stop.wait()

        holder = asyncio.create_task(hold())
        ready = asyncio.create_task(started.wait())
        await asyncio.wait({holder, ready}, return_when=asyncio.FIRST_COMPLETED)
        if holder.done():
            ready.cancel()
            holder.result()  # it failed to start: say why
        try:
            yield
        finally:
            stop.set()
            await holder
