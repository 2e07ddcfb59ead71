"""Request and response shapes of /v1/mcp-servers (API.md v1.1, "MCP servers for crews")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AnyHttpUrl, BaseModel, Field, field_validator

from opshub.schemas import StrictInput

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
ToolName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")]
CrewName = Annotated[str, Field(min_length=1, max_length=64)]


class McpServerPut(StrictInput):
    url: AnyHttpUrl = Field(description="The server's streamable HTTP endpoint.")
    secret: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="Sent as Authorization: Bearer <secret>. Left out: the stored one stays; "
        "null: removed. Never returned.",
    )
    tools: list[ToolName] | None = Field(
        default=None, max_length=200, description="The tools to expose; none: every tool."
    )
    crews: list[CrewName] = Field(min_length=1, max_length=20)
    side_effecting_tools: list[ToolName] = Field(
        default_factory=list,
        max_length=200,
        description="Tools that change the world: a call is proposed as an action to approve.",
    )

    @field_validator("tools", "crews", "side_effecting_tools")
    @classmethod
    def _unique(cls, value: list[str] | None) -> list[str] | None:
        return list(dict.fromkeys(value)) if value is not None else None


class McpServerRead(BaseModel):
    name: str
    url: str
    tools: list[str] | None
    crews: list[str]
    side_effecting_tools: list[str]
    has_secret: bool
    created_at: datetime
    updated_at: datetime
