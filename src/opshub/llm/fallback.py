"""A tenant's fallback model: where its runs go when their provider is down (after retries)."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, Field

from opshub.credentials.models import MODEL_PROVIDERS, Provider
from opshub.db.sql import Connection
from opshub.errors import InvalidInputError
from opshub.llm.usage import QUERIES
from opshub.schemas import StrictInput

ModelName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[\w.:/-]+$")]


class ModelChoice(StrictInput):
    provider: Provider
    model: ModelName


class FallbackRead(BaseModel):
    fallback: ModelChoice | None


async def get(conn: Connection, *, tenant_id: uuid.UUID) -> ModelChoice | None:
    row = await QUERIES["get_fallback"].fetchrow(conn, tenant_id=tenant_id)
    return ModelChoice(provider=row["provider"], model=row["model"]) if row else None


async def put(conn: Connection, *, tenant_id: uuid.UUID, choice: ModelChoice | None) -> None:
    if choice is None:
        await QUERIES["delete_fallback"].execute(conn, tenant_id=tenant_id)
        return
    if choice.provider not in MODEL_PROVIDERS:
        raise InvalidInputError(
            f"{choice.provider.value} is not a model provider",
            details={
                "fields": [{"loc": "body.fallback.provider", "message": "not a model provider"}]
            },
        )
    await QUERIES["put_fallback"].execute(
        conn, tenant_id=tenant_id, provider=choice.provider.value, model=choice.model
    )
