"""Tool results sized for a model's context: compact JSON, trimmed with a note that says so.

A page (``{"items": [...], "next_cursor": ...}``) is trimmed by whole items, so what the model
reads is still valid and it learns how to ask for the rest; anything else is cut at the limit.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel

MAX_OUTPUT_CHARS = 6_000


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    return str(value)


def _dumps(value: Any) -> str:
    return orjson.dumps(value, default=_plain).decode()


def for_the_model(value: Any, *, limit: int = MAX_OUTPUT_CHARS, hint: str = "ask for less") -> str:
    text = _dumps(value)
    if len(text) <= limit:
        return text
    if isinstance(value, dict) and isinstance(value.get("items"), list) and value["items"]:
        return _fewer_items(value, limit)
    return text[:limit] + f" … (trimmed: {hint})"


def _fewer_items(page: dict[str, Any], limit: int) -> str:
    items: list[Any] = page["items"]
    kept = len(items)
    while kept > 1:
        kept -= 1
        # The next page would skip what is left out here: the model asks again with a smaller
        # limit instead of paging on.
        trimmed = {
            **page,
            "items": items[:kept],
            "next_cursor": None,
            "note": f"{len(items) - kept} more items left out to fit; ask again with "
            f"limit={kept} and page on from there",
        }
        text = _dumps(trimmed)
        if len(text) <= limit:
            return text
    return _dumps({**page, "items": items[:1]})[:limit] + " … (trimmed: ask for one at a time)"
