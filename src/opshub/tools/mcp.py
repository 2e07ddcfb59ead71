"""The tools of the MCP servers a tenant registered for a crew, joined to that crew's run.

At the start of a run each server registered for the crew is asked for its tools; only those the
tenant listed are offered. A read tool is called on the server when the model calls it; a tool
the tenant marked side-effecting is never called by the run: the call is proposed as an
``mcp.tool_call`` action, under the tenant's approval policies, and its executor makes it once
approved. A server that can't be reached leaves the run without its tools, and the task's events
say so.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import structlog
from crewai.tools import BaseTool
from crewai.utilities.pydantic_schema_utils import create_model_from_schema
from crewai.utilities.string_utils import sanitize_tool_name
from mcp.types import Tool
from pydantic import Field

from opshub.actions.kinds import ActionKind, McpToolCall
from opshub.db.engine import tenant_transaction
from opshub.errors import DomainError
from opshub.mcp_servers import service as mcp_servers_service
from opshub.mcp_servers.client import CALL_SECONDS, McpServer, call_tool, list_tools
from opshub.mcp_servers.errors import McpServerUnreachableError
from opshub.tasks.models import EventType
from opshub.tools.actions import propose
from opshub.tools.connector import ConnectorTool, ToolFailure
from opshub.tools.context import ToolContext

log = structlog.get_logger(__name__)
SUMMARY_CHARS = 2000


class McpTool(ConnectorTool):
    server: McpServer = Field(exclude=True)
    remote_name: str  # the tool's name on its server
    side_effecting: bool = False

    def answer(self, **kwargs: Any) -> str:
        arguments = {key: value for key, value in kwargs.items() if value is not None}
        if self.side_effecting:
            payload = McpToolCall(
                server=self.server.name, tool=self.remote_name, arguments=arguments
            )
            summary = (
                f"Call {self.remote_name} on MCP server '{self.server.name}' with "
                f"{json.dumps(arguments, default=str)}"
            )
            return propose(
                self.context,
                tool=self.name,
                kind=ActionKind.mcp_tool_call,
                payload=payload,
                summary=summary[:SUMMARY_CHARS],
            )
        try:
            text = self.context.run(
                call_tool(self.server, self.remote_name, arguments), CALL_SECONDS + 5
            )
        except DomainError as exc:
            raise ToolFailure(exc.message) from exc
        except TimeoutError as exc:
            raise ToolFailure(f"MCP server '{self.server.name}' did not answer in time.") from exc
        return text


def _tool(context: ToolContext, server: McpServer, tool: Tool, side_effecting: bool) -> McpTool:
    name = sanitize_tool_name(f"{server.name}_{tool.name}")
    about = tool.description or tool.title or tool.name
    note = " Calling it proposes the call for the business's approval." if side_effecting else ""
    return McpTool(
        name=name,
        description=f"{about} (tool {tool.name} of MCP server '{server.name}').{note}",
        args_schema=create_model_from_schema(
            tool.inputSchema, model_name=f"{name}_args", enrich_descriptions=True
        ),
        context=context,
        server=server,
        remote_name=tool.name,
        side_effecting=side_effecting,
    )


async def _server_tools(
    context: ToolContext, registered: mcp_servers_service.CrewServer
) -> list[BaseTool]:
    server = registered.server
    try:
        offered = await list_tools(server)
    except McpServerUnreachableError as exc:
        log.info("mcp server unreachable", server=server.name, reason=exc.message)
        if context.emit is not None:
            context.emit(
                EventType.tool_result,
                tool=f"mcp-servers/{server.name}",
                error=f"{exc.message}: its tools are not offered in this run",
            )
        return []
    return [
        _tool(context, server, tool, tool.name in registered.side_effecting_tools)
        for tool in offered
        if registered.tools is None or tool.name in registered.tools
    ]


async def crew_mcp_tools(context: ToolContext, *, crew: str) -> list[BaseTool]:
    """The listed tools of every server registered for ``crew``, for one run."""
    connectors = context.connectors
    if connectors is None:
        return []
    async with tenant_transaction(context.app_pool, context.tenant_id) as conn:
        servers = await mcp_servers_service.for_crew(
            conn,
            tenant_id=context.tenant_id,
            crew=crew,
            store=connectors.resolver.store,
            allow_internal_urls=connectors.settings.allow_internal_urls,
        )
    found = await asyncio.gather(*(_server_tools(context, s) for s in servers))
    return [tool for tools in found for tool in tools]
