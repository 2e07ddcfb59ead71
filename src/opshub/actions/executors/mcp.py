"""The executor for an approved call of a side-effecting tool on a tenant's MCP server.

MCP gives no way to ask a server whether an earlier call already happened, so the call is made
once and never retried: a refusal, an error result or no answer fails the action, and the
approver sees why.
"""

from __future__ import annotations

from typing import Any

from opshub.actions.execution import ExecutionContext
from opshub.actions.kinds import McpToolCall
from opshub.mcp_servers.client import call_tool


async def call_mcp_tool(ctx: ExecutionContext, payload: McpToolCall) -> dict[str, Any]:
    if ctx.mcp_server is None:
        raise RuntimeError("an mcp.tool_call is executed with its server")
    text = await call_tool(ctx.mcp_server, payload.tool, payload.arguments)
    return {"server": payload.server, "tool": payload.tool, "result": text[:4000]}
