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
    """A crew's runs: tasks started since midnight today in the asked zone, and what runs now."""

    runs_today: int = Field(description="Tasks started since midnight (in the panel's tz).")
    succeeded_today: int
    failed_today: int
    success_rate: float | None = Field(
        description="succeeded / (succeeded + failed) of today's runs, 0-1; null before any "
        "ended. Cancelled runs and runs awaiting approval count for neither."
    )
    p50_duration_seconds: float | None = Field(
        description="Median work time of today's ended runs: from start to end, or to the "
        "moment a run stopped to wait for approval (the wait is not the crew's work)."
    )
    input_tokens: int = Field(description="Of today's runs, as recorded when each run ended.")
    output_tokens: int
    cost_usd: Decimal
    running_now: int
    last_error: PanelError | None = Field(description="The latest failed task, however old.")


class AgentRow(BaseModel):
    """One agent of a crew: its own share of today's runs, from the steps the runs stored."""

    role: str
    goal: str
    runs_today: int = Field(description="Today's runs in which this agent took a step.")
    steps: int = Field(description="Steps (crew tasks) this agent began today.")
    tool_calls: int
    model_calls: int
    input_tokens: int = Field(description="Of this agent's own model calls.")
    output_tokens: int
    cost_usd: Decimal = Field(description="Of this agent's own model calls, unrounded.")


class CrewRow(RunStats):
    crew: str = Field(description='A crew; "router" for questions answered without a crew.')
    agents: list[AgentRow]


class AgentsPanel(BaseModel):
    tz: str = Field(description="The IANA zone whose day 'today' is.")
    since: datetime = Field(description="Midnight today in tz: where 'today' starts.")
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
        description='The day (YYYY-MM-DD, in tz), the crew ("router": routing questions, '
        '"other": outside a task) or the provider ("opshub": BYOK run fees).'
    )
    byok: UsageAmounts = Field(description="Model calls on the tenant's own keys.")
    platform: UsageAmounts = Field(description="Model calls on the platform's keys.")
    run_fees_usd: Decimal = Field(description="The platform's fee for runs on the tenant's keys.")
    billable_usd: Decimal = Field(description="What the platform bills: platform cost + fees.")


class UsagePanel(BaseModel):
    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    from_: date = Field(alias="from", description="First day, included.")
    to: date = Field(description="Last day, included.")
    tz: str = Field(description="The IANA zone whose days these are.")
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
    tz: str = Field(description="The IANA zone asked for (the times here are UTC instants).")
    recent_tasks: list[RecentTask] = Field(description="The newest tasks first.")
    next_cursor: str | None = Field(
        description="Pass as cursor for the recent tasks after these; null at the end."
    )
    pending_approvals: list[ActionRead] = Field(description="Newest first.")
    credentials: list[CredentialSummary] = Field(
        description="Per provider: source (byok, platform, none) and health; never a secret."
    )
    next_runs: list[NextRun] = Field(description="Enabled schedules, soonest first.")


class DayCost(BaseModel):
    day: date
    crew: str = Field(description='The crew ("router": routing questions, "other": no task).')
    byok_usd: Decimal = Field(description="Model calls on the tenant's own keys.")
    platform_usd: Decimal = Field(description="Model calls on the platform's keys.")


class DayRuns(BaseModel):
    day: date
    status: TaskStatus = Field(description="What became of the day's tasks so far.")
    runs: int


class CrewDuration(BaseModel):
    crew: str
    runs: int = Field(description="Runs of the window whose work has ended.")
    p50_duration_seconds: float = Field(description="Median work time (approval waits excluded).")


class TrendsPanel(BaseModel):
    """Day by day over a window: what the console draws as charts."""

    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    from_: date = Field(alias="from", description="First day, included.")
    to: date = Field(description="Last day, included.")
    tz: str = Field(description="The IANA zone whose days these are.")
    days: list[date] = Field(description="Every day of the window, oldest first.")
    cost: list[DayCost] = Field(description="Per day and crew that spent anything.")
    runs: list[DayRuns] = Field(description="Per day and outcome, tasks by the day they came in.")
    durations: list[CrewDuration] = Field(description="Per crew with ended runs in the window.")
    budget_usd: Decimal | None = Field(description="The monthly platform budget; null: none.")
    platform_spent_this_month_usd: Decimal = Field(
        description="Model cost on the platform's keys this calendar month (UTC): what the "
        "budget stops."
    )
