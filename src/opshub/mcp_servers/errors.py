"""What can go wrong with a registered MCP server: not found, refused, unreachable, failing."""

from __future__ import annotations

from opshub.errors import DomainError, InvalidInputError, NotFoundError


class McpServerNotFoundError(NotFoundError):
    pass


class InvalidMcpServerError(InvalidInputError):
    pass


class McpServerUnreachableError(DomainError):
    """No answer from the server: refused, timed out, a bad URL or an internal address."""

    code = "mcp_server_unreachable"


class McpToolFailedError(DomainError):
    """The server answered the call with an error result."""

    code = "mcp_tool_failed"
