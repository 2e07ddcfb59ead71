"""Request and response shapes of /v1/tasks (API.md, "Tasks")."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator

from opshub.errors import InvalidInputError
from opshub.outbound import is_internal_name
from opshub.schemas import StrictInput
from opshub.tasks.models import TaskStatus

MAX_INPUT_CHARS = 20_000


class TaskCreate(StrictInput):
    crew: str | None = Field(default=None, max_length=64, description="No crew: routed.")
    input: str = Field(min_length=1, max_length=MAX_INPUT_CHARS)
    inputs: dict[str, Any] = Field(default_factory=dict)
    thread_id: uuid.UUID | None = None
    priority: int = Field(default=0, ge=0, le=9)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)
    webhook_url: AnyHttpUrl | None = None

    @field_validator("inputs")
    @classmethod
    def _small_inputs(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(repr(value)) > MAX_INPUT_CHARS:
            raise ValueError(f"inputs may hold at most {MAX_INPUT_CHARS} characters")
        return value


def check_webhook_url(url: AnyHttpUrl, *, allow_internal_urls: bool) -> None:
    """A webhook must not aim the hub at the platform's own network."""
    if not allow_internal_urls and is_internal_name(url.host or ""):
        message = "the webhook URL points at an internal address, which this hub does not call"
        raise InvalidInputError(
            message, details={"fields": [{"loc": "body.webhook_url", "message": message}]}
        )


class TaskError(BaseModel):
    code: str
    message: str


class TaskUsage(BaseModel):
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    billed_to: Literal["byok", "platform"] | None


class TaskRead(BaseModel):
    id: uuid.UUID
    status: TaskStatus
    crew: str | None
    input: str
    inputs: dict[str, Any]
    thread_id: uuid.UUID | None
    schedule_id: uuid.UUID | None
    retry_of: uuid.UUID | None
    priority: int
    result: Any | None
    error: TaskError | None
    usage: TaskUsage
    webhook_url: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempt: int
    pending_actions: list[dict[str, Any]]


class TaskPage(BaseModel):
    items: list[TaskRead]
    next_cursor: str | None


class TaskEvent(BaseModel):
    """One step of a run; steps carry more fields than these (tool args, errors), kept as sent."""

    model_config = ConfigDict(extra="allow")

    seq: int
    type: str
    ts: datetime
    agent: str | None = None
    tool: str | None = None
    text: str | None = None
    usage: dict[str, Any] | None = None
