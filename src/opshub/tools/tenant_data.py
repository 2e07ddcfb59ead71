"""Read the tenant's own records (clients, leads, campaigns, reports), under RLS."""

from __future__ import annotations

from typing import Literal

import orjson
from crewai.tools import BaseTool
from pydantic import BaseModel, ConfigDict, Field

from opshub.data import service as data_service
from opshub.data.resources import RESOURCES
from opshub.db.engine import tenant_transaction
from opshub.tools.context import ToolContext

MAX_OUTPUT_CHARS = 6_000


class TenantDataArgs(BaseModel):
    resource: Literal["clients", "leads", "campaigns", "reports"] = Field(
        description="Which records to read."
    )
    search: str | None = Field(
        default=None, max_length=200, description="Optional text the records must contain."
    )
    limit: int = Field(default=10, ge=1, le=50, description="How many records, newest first.")


class TenantDataTool(BaseTool):
    name: str = "tenant_data"
    description: str = (
        "Reads this business's own records, newest first: clients, leads, campaigns or reports. "
        "Use it to answer questions about them; it never changes anything."
    )
    args_schema: type[BaseModel] = TenantDataArgs
    model_config = ConfigDict(arbitrary_types_allowed=True)
    context: ToolContext = Field(exclude=True)

    def _run(self, resource: str, search: str | None = None, limit: int = 10) -> str:
        async def read() -> list[str]:
            async with tenant_transaction(self.context.app_pool, self.context.tenant_id) as conn:
                documents, _ = await data_service.list_records(
                    conn,
                    resource=RESOURCES[resource],
                    tenant_id=self.context.tenant_id,
                    filters={},
                    q=search,
                    limit=limit,
                )
            return documents

        documents = self.context.run(read())
        if not documents:
            return f"No {resource} found."
        rows = [orjson.loads(document) for document in documents]
        text = orjson.dumps(rows).decode()
        if len(text) > MAX_OUTPUT_CHARS:
            text = text[:MAX_OUTPUT_CHARS] + " … (trimmed; ask for fewer records)"
        return text
