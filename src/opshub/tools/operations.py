"""What an operations digest checks besides the shop: connection health and failed runs."""

from __future__ import annotations

from typing import Any

from crewai.tools import BaseTool
from pydantic import BaseModel, ConfigDict, Field

from opshub.credentials import service as credentials_service
from opshub.db.engine import tenant_transaction
from opshub.tasks import service as tasks_service
from opshub.tasks.models import TaskStatus
from opshub.tools.context import ToolContext
from opshub.tools.output import for_the_model


class NoArgs(BaseModel):
    pass


class ConnectionHealthTool(BaseTool):
    name: str = "connection_health"
    description: str = (
        "Lists the business's connections (model providers, shop, ad platforms, Amazon) with "
        "their health: healthy, invalid, rate_limited, unreachable or unchecked."
    )
    args_schema: type[BaseModel] = NoArgs
    model_config = ConfigDict(arbitrary_types_allowed=True)
    context: ToolContext = Field(exclude=True)

    def _run(self, **_: Any) -> str:
        context = self.context
        if context.connectors is None:
            return "Connection health is not available in this run."
        settings = context.connectors.settings

        async def read() -> list[dict[str, Any]]:
            async with tenant_transaction(context.app_pool, context.tenant_id) as conn:
                summaries = await credentials_service.list_credentials(
                    conn, tenant_id=context.tenant_id, settings=settings
                )
            # Provider, source and health only: fingerprints are for people, not prompts.
            return [
                {
                    "provider": s.provider.value,
                    "source": s.source.value,
                    "health": s.status.value,
                    "checked_at": s.checked_at,
                }
                for s in summaries
                if s.source.value != "none"
            ]

        return for_the_model(context.run(read()))


class FailedRunsArgs(BaseModel):
    limit: int = Field(default=10, ge=1, le=50, description="How many, newest first.")


class FailedRunsTool(BaseTool):
    name: str = "failed_runs"
    description: str = "Lists the business's most recent failed tasks with their error."
    args_schema: type[BaseModel] = FailedRunsArgs
    model_config = ConfigDict(arbitrary_types_allowed=True)
    context: ToolContext = Field(exclude=True)

    def _run(self, limit: int = 10) -> str:
        context = self.context

        async def read() -> list[dict[str, Any]]:
            async with tenant_transaction(context.app_pool, context.tenant_id) as conn:
                tasks, _ = await tasks_service.list_tasks(
                    conn, tenant_id=context.tenant_id, status=TaskStatus.failed, limit=limit
                )
            return [
                {
                    "id": str(t.id),
                    "crew": t.crew,
                    "input": t.input[:200],
                    "error": t.error,
                    "finished_at": t.finished_at,
                }
                for t in tasks
            ]

        failed = context.run(read())
        return for_the_model(failed) if failed else "No failed runs."
