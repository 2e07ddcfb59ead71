"""A ``Call``: what to send and how to read the answer; building one does no I/O."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, TypeAdapter

T = TypeVar("T")
ItemT = TypeVar("ItemT", covariant=True)


class Page(Protocol[ItemT]):
    """A listing: its items and the cursor of the next page (None on the last)."""

    @property
    def items(self) -> Sequence[ItemT]: ...
    @property
    def next_cursor(self) -> str | None: ...


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    read: Callable[[bytes], T]
    params: dict[str, str] = field(default_factory=dict)
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def call(
    method: str,
    path: str,
    reads: type[T] | Any,
    *,
    params: dict[str, Any] | None = None,
    json: Any = None,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Call[T]:
    """A call whose answer is JSON read as ``reads``; the body is ``json``, or ``content`` as
    its ``Content-Type`` header says."""
    adapter: TypeAdapter[T] = TypeAdapter(reads)
    return Call(method, path, adapter.validate_json, query(params), json, content, headers or {})


def no_content(method: str, path: str, *, params: dict[str, Any] | None = None) -> Call[None]:
    """A call answered with 204 and no body."""
    return Call(method, path, _nothing, query(params))


def text(method: str, path: str) -> Call[str]:
    """A call whose answer is plain text."""
    return Call(method, path, _decode)


def query(params: dict[str, Any] | None) -> dict[str, str]:
    # Unset filters are left out of the query string rather than sent empty.
    return {k: str(v) for k, v in (params or {}).items() if v is not None}


def body(model: BaseModel) -> Any:
    """An input model as sent: only the fields the caller set, so defaults stay the hub's."""
    return model.model_dump(mode="json", exclude_unset=True)


def _nothing(_: bytes) -> None:
    return None


def _decode(content: bytes) -> str:
    return content.decode()
