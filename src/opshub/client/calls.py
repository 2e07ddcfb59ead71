"""Every request the client makes, described once: the sync and async clients only send them.

A ``Call`` says what to send and which model reads the answer; building one does no I/O.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from pydantic import TypeAdapter

from opshub.actions.schemas import ActionPage, ActionRead
from opshub.credentials.schemas import CredentialRead, CredentialSummary
from opshub.tasks.schemas import TaskPage, TaskRead
from opshub.threads.schemas import MessagePage, MessagePosted, ThreadRead

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
    reads: TypeAdapter[T]
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def read(self, body: bytes) -> T:
        return self.reads.validate_json(body)


def _call(
    method: str,
    path: str,
    reads: type[T] | Any,
    *,
    params: dict[str, Any] | None = None,
    json: Any = None,
    headers: dict[str, str] | None = None,
) -> Call[T]:
    # Unset filters are left out of the query string rather than sent empty.
    query = {k: str(v) for k, v in (params or {}).items() if v is not None}
    return Call(method, path, TypeAdapter(reads), query, json, headers or {})


def submit_task(
    *,
    input: str,
    crew: str | None = None,
    inputs: dict[str, Any] | None = None,
    thread_id: uuid.UUID | None = None,
    priority: int = 0,
    idempotency_key: str | None = None,
    webhook_url: str | None = None,
) -> Call[TaskRead]:
    body: dict[str, Any] = {"input": input, "priority": priority}
    optional = {"crew": crew, "inputs": inputs, "webhook_url": webhook_url}
    body.update({k: v for k, v in optional.items() if v is not None})
    if thread_id is not None:
        body["thread_id"] = str(thread_id)
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    return _call("POST", "/v1/tasks", TaskRead, json=body, headers=headers)


def get_task(task_id: uuid.UUID | str) -> Call[TaskRead]:
    return _call("GET", f"/v1/tasks/{task_id}", TaskRead)


def list_tasks(
    *,
    status: str | None = None,
    crew: str | None = None,
    thread_id: uuid.UUID | str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Call[TaskPage]:
    params = {"status": status, "crew": crew, "thread_id": thread_id, "cursor": cursor}
    return _call("GET", "/v1/tasks", TaskPage, params={**params, "limit": limit})


def cancel_task(task_id: uuid.UUID | str) -> Call[TaskRead]:
    return _call("POST", f"/v1/tasks/{task_id}/cancel", TaskRead)


def retry_task(task_id: uuid.UUID | str) -> Call[TaskRead]:
    return _call("POST", f"/v1/tasks/{task_id}/retry", TaskRead)


def list_actions(
    *,
    status: str | None = None,
    task_id: uuid.UUID | str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Call[ActionPage]:
    params = {"status": status, "task_id": task_id, "cursor": cursor, "limit": limit}
    return _call("GET", "/v1/actions", ActionPage, params=params)


def get_action(action_id: uuid.UUID | str) -> Call[ActionRead]:
    return _call("GET", f"/v1/actions/{action_id}", ActionRead)


def decide_action(
    action_id: uuid.UUID | str, *, approve: bool, reason: str | None = None
) -> Call[ActionRead]:
    verb = "approve" if approve else "reject"
    body = {"reason": reason} if reason else {}
    return _call("POST", f"/v1/actions/{action_id}/{verb}", ActionRead, json=body)


def put_credential(
    provider: str, *, secret: dict[str, Any], label: str | None = None
) -> Call[CredentialRead]:
    body: dict[str, Any] = {"secret": secret}
    if label is not None:
        body["label"] = label
    return _call("PUT", f"/v1/credentials/{provider}", CredentialRead, json=body)


def list_credentials() -> Call[list[CredentialSummary]]:
    return _call("GET", "/v1/credentials", list[CredentialSummary])


def create_thread(*, title: str | None = None) -> Call[ThreadRead]:
    return _call("POST", "/v1/threads", ThreadRead, json={"title": title} if title else {})


def post_message(
    thread_id: uuid.UUID | str, *, content: str, crew: str | None = None
) -> Call[MessagePosted]:
    body = {"content": content, **({"crew": crew} if crew else {})}
    return _call("POST", f"/v1/threads/{thread_id}/messages", MessagePosted, json=body)


def list_messages(
    thread_id: uuid.UUID | str, *, after: int = 0, limit: int = 100
) -> Call[MessagePage]:
    params = {"after": after, "limit": limit}
    return _call("GET", f"/v1/threads/{thread_id}/messages", MessagePage, params=params)
