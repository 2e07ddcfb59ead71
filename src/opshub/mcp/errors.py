"""Failures in the API's error envelope, so an MCP client reads the same codes as REST does.

The SDK turns whatever a tool raises into an error result whose text is the exception's message
behind "Error executing tool …"; a domain error (or the arguments failing validation) becomes
the envelope alone instead, the same JSON as the REST API's error body.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ParamSpec, TypeVar

import orjson
from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ResourceError, ToolError
from mcp.types import CallToolResult, ContentBlock, TextContent
from pydantic import BaseModel, ValidationError

from opshub.errors import DomainError, InvalidInputError

P = ParamSpec("P")
R = TypeVar("R")
M = TypeVar("M", bound=BaseModel)


def envelope(exc: DomainError) -> str:
    error: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.details:
        error["details"] = exc.details
    return orjson.dumps({"error": error}).decode()


def invalid(exc: ValidationError) -> InvalidInputError:
    """As the API's validation error: where and why, never the offending value."""
    problems = [
        {"loc": ".".join(str(p) for p in e["loc"]), "message": e["msg"], "type": e["type"]}
        for e in exc.errors()
    ]
    return InvalidInputError("the request is not valid", details={"fields": problems})


def validated(schema: type[M], **fields: Any) -> M:
    """The REST API's request schema applied to a tool's arguments."""
    try:
        return schema.model_validate(fields)
    except ValidationError as exc:
        raise invalid(exc) from None


class EnvelopedFastMCP(FastMCP):
    """FastMCP whose tool errors carry the API's error envelope."""

    # The low-level server passes a CallToolResult through as it is; FastMCP's annotation
    # leaves that out.
    async def call_tool(  # type: ignore[override]
        self, name: str, arguments: dict[str, Any]
    ) -> Sequence[ContentBlock] | dict[str, Any] | CallToolResult:
        try:
            return await super().call_tool(name, arguments)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, ValidationError):
                cause = invalid(cause)
            if not isinstance(cause, DomainError):
                raise
            text = TextContent(type="text", text=envelope(cause))
            return CallToolResult(content=[text], isError=True)


def enveloped(read: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """A resource's domain error as a resource error whose message is the envelope."""

    @functools.wraps(read)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await read(*args, **kwargs)
        except DomainError as exc:
            raise ResourceError(envelope(exc)) from None

    return run
