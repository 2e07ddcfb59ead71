"""/v1/threads: chat-style submission; the conversation's user and agent turns."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from opshub.api.deps import MemberDep, ViewerDep
from opshub.threads import service as threads_service
from opshub.threads.schemas import (
    MessageCreate,
    MessagePage,
    MessagePosted,
    ThreadCreate,
    ThreadPage,
    ThreadRead,
)

router = APIRouter(prefix="/v1/threads", tags=["threads"])


@router.post("", response_model=ThreadRead, status_code=201)
async def create_thread(ctx: MemberDep, body: ThreadCreate | None = None) -> ThreadRead:
    return await threads_service.create_thread(
        ctx.conn, tenant_id=ctx.principal.tenant_id, title=body.title if body else None
    )


@router.get("", response_model=ThreadPage)
async def list_threads(
    ctx: ViewerDep,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ThreadPage:
    items, next_cursor = await threads_service.list_threads(
        ctx.conn, tenant_id=ctx.principal.tenant_id, cursor=cursor, limit=limit
    )
    return ThreadPage(items=items, next_cursor=next_cursor)


@router.get("/{thread_id}", response_model=ThreadRead)
async def get_thread(ctx: ViewerDep, thread_id: uuid.UUID) -> ThreadRead:
    return await threads_service.get_thread(
        ctx.conn, tenant_id=ctx.principal.tenant_id, thread_id=thread_id
    )


@router.post("/{thread_id}/messages", response_model=MessagePosted, status_code=202)
async def post_message(ctx: MemberDep, thread_id: uuid.UUID, body: MessageCreate) -> MessagePosted:
    return await threads_service.post_message(
        ctx.conn, tenant_id=ctx.principal.tenant_id, thread_id=thread_id, body=body
    )


@router.get("/{thread_id}/messages", response_model=MessagePage)
async def list_messages(
    ctx: ViewerDep,
    thread_id: uuid.UUID,
    after: Annotated[int, Query(ge=0, description="Messages after this id")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> MessagePage:
    items = await threads_service.list_messages(
        ctx.conn, tenant_id=ctx.principal.tenant_id, thread_id=thread_id, after=after, limit=limit
    )
    return MessagePage(items=items)
