"""Server-Sent Events, decoded line by line (the same decoder for the sync and async streams)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel

# A task's stream ends after one of these (awaiting_approval ends a run, not the task).
FINAL = frozenset({"task.succeeded", "task.failed", "task.cancelled"})
RUN_ENDED = FINAL | {"task.awaiting_approval"}


class HubEvent(BaseModel):
    """One event of the tenant's stream (``GET /v1/events``); ``cursor`` resumes after it."""

    cursor: int
    type: str
    ts: datetime
    data: dict[str, Any]


@dataclass(frozen=True)
class Message:
    id: str | None
    data: dict[str, Any]

    def hub_event(self) -> HubEvent:
        data = dict(self.data)
        kind, ts = data.pop("type"), data.pop("ts")
        return HubEvent(cursor=int(self.id or 0), type=kind, ts=ts, data=data)


@dataclass
class Decoder:
    """Feed it lines; it hands back each message once its blank line arrives (comments, such
    as keep-alives, are skipped)."""

    _data: list[str] = field(default_factory=list)
    _id: str | None = None

    def feed(self, line: str) -> Message | None:
        if line.startswith("data:"):
            self._data.append(line[5:].removeprefix(" "))
        elif line.startswith("id:"):
            self._id = line[3:].strip()
        elif not line and self._data:
            payload: dict[str, Any] = json.loads("\n".join(self._data))
            self._data = []
            return Message(self._id, payload)
        return None
