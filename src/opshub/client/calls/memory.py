"""The tenant's long-term memory."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from opshub.client.calls.base import Call, body, call, no_content
from opshub.memory.schemas import (
    MemoriesForgotten,
    MemoriesImported,
    MemoryCreate,
    MemoryImportItem,
    MemoryPage,
    MemoryRead,
    MemorySaved,
    MemorySettings,
)


def search_memories(
    *,
    query: str | None = None,
    scope: str | None = None,
    kind: str | None = None,
    limit: int = 10,
) -> Call[MemoryPage]:
    params = {"query": query, "scope": scope, "kind": kind, "limit": limit}
    return call("GET", "/v1/memories", MemoryPage, params=params)


def add_memory(memory: MemoryCreate) -> Call[MemorySaved]:
    return call("POST", "/v1/memories", MemorySaved, json=body(memory))


def import_memories(memories: Sequence[MemoryImportItem]) -> Call[MemoriesImported]:
    sent = {"memories": [body(memory) for memory in memories]}
    return call("POST", "/v1/memories/import", MemoriesImported, json=sent)


def forget_memories(*, scope: str) -> Call[MemoriesForgotten]:
    return call("DELETE", "/v1/memories", MemoriesForgotten, params={"scope": scope})


def erase_memories() -> Call[MemoriesForgotten]:
    return call("DELETE", "/v1/memories/all", MemoriesForgotten)


def get_memory_settings() -> Call[MemorySettings]:
    return call("GET", "/v1/memories/settings", MemorySettings)


def update_memory_settings(*, extraction: bool) -> Call[MemorySettings]:
    sent = {"extraction": extraction}
    return call("PATCH", "/v1/memories/settings", MemorySettings, json=sent)


def get_memory(memory_id: uuid.UUID | str) -> Call[MemoryRead]:
    return call("GET", f"/v1/memories/{memory_id}", MemoryRead)


def delete_memory(memory_id: uuid.UUID | str) -> Call[None]:
    return no_content("DELETE", f"/v1/memories/{memory_id}")
