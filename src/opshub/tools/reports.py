"""Save a report to the tenant's reports, where the dashboard and later runs find it."""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
from crewai.tools import BaseTool
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from opshub.data import service as data_service
from opshub.data.resources import RESOURCES
from opshub.data.schemas import ReportCreate
from opshub.db.engine import tenant_transaction
from opshub.tools.context import ToolContext


class SaveReportArgs(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=100_000, description="The report, in Markdown.")
    period_start: date | None = Field(default=None, description="First day it covers.")
    period_end: date | None = Field(default=None, description="Last day it covers.")
    kind: str = Field(default="performance", max_length=100)


class SaveReportTool(BaseTool):
    name: str = "save_report"
    description: str = "Saves a finished report to the business's reports, with its period."
    args_schema: type[BaseModel] = SaveReportArgs
    model_config = ConfigDict(arbitrary_types_allowed=True)
    context: ToolContext = Field(exclude=True)
    author: str = "opshub"

    def _run(self, **args: Any) -> str:
        try:
            report = ReportCreate(**args, author=self.author)
        except ValidationError as exc:
            return f"The report was not saved: {exc.errors()[0]['msg']}."

        async def save() -> str:
            async with tenant_transaction(self.context.app_pool, self.context.tenant_id) as conn:
                return await data_service.create_record(
                    conn,
                    resource=RESOURCES["reports"],
                    tenant_id=self.context.tenant_id,
                    data=report,
                )

        saved = orjson.loads(self.context.run(save()))
        return f"Saved report {saved['id']} '{saved['title']}'."
