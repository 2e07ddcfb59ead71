"""Request and response shapes of /v1/schedules (API.md, "Schedules")."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from opshub.schemas import StrictInput
from opshub.tasks.schemas import MAX_INPUT_CHARS


class ScheduleCreate(StrictInput):
    crew: str | None = Field(default=None, max_length=64)
    input: str = Field(min_length=1, max_length=MAX_INPUT_CHARS)
    inputs: dict[str, Any] = Field(default_factory=dict)
    cron: str = Field(min_length=1, max_length=120, examples=["0 9 * * MON"])
    timezone: str = Field(default="UTC", min_length=1, max_length=64, examples=["Europe/Berlin"])
    enabled: bool = True


class ScheduleUpdate(StrictInput):
    crew: str | None = Field(default=None, max_length=64)
    input: str | None = Field(default=None, min_length=1, max_length=MAX_INPUT_CHARS)
    inputs: dict[str, Any] | None = None
    cron: str | None = Field(default=None, min_length=1, max_length=120)
    timezone: str | None = Field(default=None, min_length=1, max_length=64)
    enabled: bool | None = None


class ScheduleRead(BaseModel):
    id: uuid.UUID
    crew: str | None
    input: str
    inputs: dict[str, Any]
    cron: str
    timezone: str
    enabled: bool
    next_run_at: datetime | None = Field(description="In UTC; null while disabled.")
    last_run_at: datetime | None
    created_at: datetime
    updated_at: datetime
