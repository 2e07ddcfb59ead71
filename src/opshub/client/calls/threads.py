"""Chat threads and their messages."""

from __future__ import annotations

import uuid

from opshub.client.calls.base import Call, call
from opshub.threads.schemas import MessagePage, MessagePosted, ThreadPage, ThreadRead


def create_thread(*, title: str | None = None) -> Call[ThreadRead]:
    return call("POST", "/v1/threads", ThreadRead, json={"title": title} if title else {})


def list_threads(*, cursor: str | None = None, limit: int = 50) -> Call[ThreadPage]:
    return call("GET", "/v1/threads", ThreadPage, params={"cursor": cursor, "limit": limit})


def get_thread(thread_id: uuid.UUID | str) -> Call[ThreadRead]:
    return call("GET", f"/v1/threads/{thread_id}", ThreadRead)


def post_message(
    thread_id: uuid.UUID | str, *, content: str, crew: str | None = None
) -> Call[MessagePosted]:
    sent = {"content": content, **({"crew": crew} if crew else {})}
    return call("POST", f"/v1/threads/{thread_id}/messages", MessagePosted, json=sent)


def list_messages(
    thread_id: uuid.UUID | str, *, after: int = 0, limit: int = 100
) -> Call[MessagePage]:
    params = {"after": after, "limit": limit}
    return call("GET", f"/v1/threads/{thread_id}/messages", MessagePage, params=params)
