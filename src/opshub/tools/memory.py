"""``search_memory`` and ``save_memory``: the agents' own hands on the tenant's long-term memory."""

from __future__ import annotations

import orjson
from crewai.tools import BaseTool
from pydantic import BaseModel, ConfigDict, Field

from opshub.memory.models import MemoryKind
from opshub.memory.run_memory import TenantMemory
from opshub.memory.schemas import MemoryCreate, MemoryHit
from opshub.memory.service import MemoryFilter
from opshub.tools.context import ToolContext


def _for_the_model(hits: list[MemoryHit]) -> str:
    return orjson.dumps(
        [{"content": h.content, "kind": h.kind.value, "scope": h.scope} for h in hits]
    ).decode()


class SearchMemoryArgs(BaseModel):
    query: str = Field(min_length=1, max_length=500, description="What to recall, in words.")
    limit: int = Field(default=5, ge=1, le=20)


class SearchMemoryTool(BaseTool):
    name: str = "search_memory"
    description: str = (
        "Recalls what this business's long-term memory holds about a topic: facts, preferences, "
        "past outcomes and insights from earlier work. Use it before assuming something."
    )
    args_schema: type[BaseModel] = SearchMemoryArgs
    model_config = ConfigDict(arbitrary_types_allowed=True)
    context: ToolContext = Field(exclude=True)
    memory: TenantMemory = Field(exclude=True)
    scopes_filter: MemoryFilter = Field(exclude=True)

    def _run(self, query: str, limit: int = 5) -> str:
        hits = self.context.run(self.memory.search(query, limit=limit, where=self.scopes_filter))
        return _for_the_model(hits) if hits else "Nothing remembered about that."


class SaveMemoryArgs(BaseModel):
    content: str = Field(
        min_length=1, max_length=1_000, description="One self-contained sentence to remember."
    )
    kind: MemoryKind = Field(default=MemoryKind.fact)
    subject: str | None = Field(
        default=None,
        max_length=200,
        description="A short key for what it is about (e.g. acme.ad_budget): a later fact with "
        "the same subject replaces this one.",
    )


class SaveMemoryTool(BaseTool):
    name: str = "save_memory"
    description: str = (
        "Stores a durable fact, preference or insight about this business for future work. "
        "Only for things that stay true; never for secrets or passwords."
    )
    args_schema: type[BaseModel] = SaveMemoryArgs
    model_config = ConfigDict(arbitrary_types_allowed=True)
    context: ToolContext = Field(exclude=True)
    memory: TenantMemory = Field(exclude=True)

    def _run(self, content: str, kind: str = "fact", subject: str | None = None) -> str:
        item = MemoryCreate(content=content, kind=MemoryKind(kind), subject=subject or None)
        [saved] = self.context.run(self.memory.remember([item]))
        return f"Remembered ({saved.outcome})."
