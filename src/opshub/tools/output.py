"""Tool results sized for a model's context: compact JSON, trimmed with a note that says so."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel

MAX_OUTPUT_CHARS = 6_000


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    return str(value)


def for_the_model(value: Any, *, limit: int = MAX_OUTPUT_CHARS, hint: str = "ask for less") -> str:
    text = orjson.dumps(value, default=_plain).decode()
    if len(text) <= limit:
        return text
    return text[:limit] + f" … (trimmed: {hint})"
