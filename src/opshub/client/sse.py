"""Server-Sent Events, decoded line by line (the same decoder for the sync and async streams)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from opshub.tasks.schemas import TaskEvent

# A task's stream ends after one of these (awaiting_approval ends a run, not the task).
FINAL = frozenset({"task.succeeded", "task.failed", "task.cancelled"})
RUN_ENDED = FINAL | {"task.awaiting_approval"}


@dataclass
class Decoder:
    """Feed it lines; it hands back each event once its blank line arrives."""

    _data: list[str] = field(default_factory=list)
    last_id: str | None = None

    def feed(self, line: str) -> TaskEvent | None:
        if line.startswith("data:"):
            self._data.append(line[5:].removeprefix(" "))
        elif line.startswith("id:"):
            self.last_id = line[3:].strip()
        elif not line and self._data:
            payload: dict[str, Any] = json.loads("\n".join(self._data))
            self._data = []
            return TaskEvent.model_validate(payload)
        return None
