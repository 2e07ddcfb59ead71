"""Request and response shapes of /v1/threads (API.md, "Threads")."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from opshub.schemas import StrictInput
from opshub.tasks.schemas import MAX_INPUT_CHARS, TaskRead


class ThreadCreate(StrictInput):
    title: str | None = Field(default=None, max_length=200)


class ThreadRead(BaseModel):
    id: uuid.UUID
    title: str | None
    created_at: datetime


class ThreadSummary(ThreadRead):
    last_message_at: datetime | None


class ThreadPage(BaseModel):
    items: list[ThreadSummary]
    next_cursor: str | None


class MessageCreate(StrictInput):
    content: str = Field(min_length=1, max_length=MAX_INPUT_CHARS)
    crew: str | None = Field(default=None, max_length=64, description="No crew: routed.")


class MessageRead(BaseModel):
    id: int
    role: Literal["user", "agent"]
    content: str
    task_id: uuid.UUID | None
    created_at: datetime


class MessagePosted(BaseModel):
    message: MessageRead
    task: TaskRead


class MessagePage(BaseModel):
    items: list[MessageRead]
