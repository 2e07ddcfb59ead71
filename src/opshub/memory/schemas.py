"""Request and response shapes of /v1/memories (API.md, "Memory")."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from opshub.memory.embedders import DIMENSIONS
from opshub.memory.models import MemoryKind, Scope
from opshub.schemas import StrictInput

MAX_CONTENT_CHARS = 4_000
MAX_IMPORT_ITEMS = 5_000


class _MemoryFields(StrictInput):
    content: str = Field(min_length=1, max_length=MAX_CONTENT_CHARS)
    scope: str = Field(
        default="tenant", description="tenant, crew:<name>, agent:<role> or thread:<id>"
    )
    kind: MemoryKind = MemoryKind.fact
    importance: float = Field(default=0.5, ge=0, le=1)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("scope")
    @classmethod
    def _valid_scope(cls, value: str) -> str:
        return str(Scope.parse(value))

    @field_validator("content")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("content must not be blank")
        return value.strip()

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(repr(value)) > 4_000:
            raise ValueError("metadata may hold at most 4000 characters")
        return value


class MemoryCreate(_MemoryFields):
    subject: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="What the memory is about; a newer fact on the same subject supersedes it.",
    )
    expires_at: datetime | None = None


class MemoryImportItem(_MemoryFields):
    """Imported as it is: only exact repeats are skipped (no near-duplicates, no supersede)."""

    embedding: list[float] | None = Field(
        default=None,
        min_length=DIMENSIONS,
        max_length=DIMENSIONS,
        description=f"The content's {DIMENSIONS}-dimension vector under the tenant's active "
        "embedding model; left out, opshub embeds the content.",
    )


class MemoryImport(StrictInput):
    memories: list[MemoryImportItem] = Field(min_length=1, max_length=MAX_IMPORT_ITEMS)


class MemoriesImported(BaseModel):
    received: int
    inserted: int
    skipped: int = Field(description="Exact repeats of a live memory in its scope or the import")


class MemoryRead(BaseModel):
    id: uuid.UUID
    scope: str
    kind: MemoryKind
    content: str
    subject: str | None
    metadata: dict[str, Any]
    importance: float
    embedding_model: str
    created_at: datetime
    updated_at: datetime
    last_recalled_at: datetime | None
    recall_count: int
    expires_at: datetime | None
    superseded_by: uuid.UUID | None


class MemoryHit(MemoryRead):
    score: float = Field(description="Reciprocal-rank-fusion score of the vector and text ranks.")
    similarity: float | None = Field(description="Cosine similarity to the query, if it ranked.")


class MemorySaved(BaseModel):
    memory: MemoryRead
    outcome: Literal["created", "duplicate", "refreshed", "superseded"]
    superseded: list[uuid.UUID] = Field(default_factory=list)


class MemoryPage(BaseModel):
    items: list[MemoryHit]


class MemoriesForgotten(BaseModel):
    deleted: int


class MemorySettings(BaseModel):
    embedding_model: str = Field(description="Vectors of this model are compared; see reembed.")
    extraction: bool = Field(description="After each run, one model call picks facts to keep.")


class MemorySettingsUpdate(StrictInput):
    extraction: bool
