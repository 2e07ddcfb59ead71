"""What the dashboard panels show (API.md, "Panels"): read-only views over the other domains."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from opshub.actions.schemas import ActionRead
from opshub.credentials.schemas import CredentialSummary
from opshub.tasks.models import TaskStatus
from opshub.tasks.schemas import TaskError


class PanelError(BaseModel):
    task_id: uuid.UUID
    code: str
    message: str
    at: datetime | None = Field(description="When the failed task ended.")


class RunStats(BaseModel):
    """A crew's runs: tasks started since midnight UTC today ("today"), and what runs now."""

    runs_today: int = Field(description="Tasks started since midnight UTC.")
    succeeded_today: int
    failed_today: int
    success_rate: float | None = Field(
        description="succeeded / (succeeded + failed) of today's runs, 0-1; null before any "
        "ended. Cancelled runs and runs awaiting approval count for neither."
    )
    p50_duration_seconds: float | None = Field(
        description="Median of finished_at - started_at over today's ended runs."
    )
    input_tokens: int = Field(description="Of today's runs, as recorded when each run ended.")
    output_tokens: int
    cost_usd: Decimal
    running_now: int
    last_error: PanelError | None = Field(description="The latest failed task, however old.")


class AgentRow(RunStats):
    """One agent of a crew. A crew's agents work one run together, so each run of the crew
    counts for each of its agents: an agent's numbers are its crew's."""

    role: str
    goal: str


class CrewRow(RunStats):
    crew: str = Field(description='A crew; "router" for questions answered without a crew.')
    agents: list[AgentRow]


class AgentsPanel(BaseModel):
    since: datetime = Field(description="Midnight UTC today: where 'today' starts.")
    crews: list[CrewRow]


class UsageGroup(StrEnum):
    day = "day"
    crew = "crew"
    provider = "provider"


class UsageAmounts(BaseModel):
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal


class UsageRow(BaseModel):
    key: str = Field(
        description='The day (YYYY-MM-DD, UTC), the crew ("router": routing questions, '
        '"other": outside a task) or the provider ("opshub": BYOK run fees).'
    )
    byok: UsageAmounts = Field(description="Model calls on the tenant's own keys.")
    platform: UsageAmounts = Field(description="Model calls on the platform's keys.")
    run_fees_usd: Decimal = Field(description="The platform's fee for runs on the tenant's keys.")
    billable_usd: Decimal = Field(description="What the platform bills: platform cost + fees.")


class UsagePanel(BaseModel):
    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    from_: date = Field(alias="from", description="First day, UTC, included.")
    to: date = Field(description="Last day, UTC, included.")
    group_by: UsageGroup
    rows: list[UsageRow] = Field(description="By day: every day of the window, oldest first.")
    total: UsageRow = Field(description='The whole window; its key is "total".')


class RecentTask(BaseModel):
    id: uuid.UUID
    crew: str | None
    status: TaskStatus
    input: str = Field(description="The request's first 200 characters.")
    error: TaskError | None
    cost_usd: Decimal
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class NextRun(BaseModel):
    schedule_id: uuid.UUID
    crew: str | None
    input: str = Field(description="The request's first 200 characters.")
    cron: str
    timezone: str
    next_run_at: datetime = Field(description="In UTC.")


class ActivityPanel(BaseModel):
    recent_tasks: list[RecentTask] = Field(description="The newest tasks first.")
    pending_approvals: list[ActionRead] = Field(description="Newest first.")
    credentials: list[CredentialSummary] = Field(
        description="Per provider: source (byok, platform, none) and health; never a secret."
    )
    next_runs: list[NextRun] = Field(description="Enabled schedules, soonest first.")
