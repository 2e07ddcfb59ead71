"""Chat: the tenant's threads and one conversation, whose newest question is answered live."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from opshub.actions import service as actions_service
from opshub.console.deps import FormDep, PageDep
from opshub.console.render import page
from opshub.tasks import service as tasks_service
from opshub.tasks.schemas import MAX_INPUT_CHARS
from opshub.threads import service as threads_service
from opshub.threads.schemas import MessageCreate

router = APIRouter(prefix="/console/chat")


@router.get("", response_class=HTMLResponse, include_in_schema=False)
async def threads(
    request: Request, ctx: PageDep, cursor: Annotated[str | None, Query(max_length=500)] = None
) -> HTMLResponse:
    items, next_cursor = await threads_service.list_threads(
        ctx.conn, tenant_id=ctx.principal.tenant_id, cursor=cursor, limit=50
    )
    return page(request, "chat.html", ctx, threads=items, next_cursor=next_cursor, thread=None)


@router.post("", include_in_schema=False)
async def new_thread(
    ctx: FormDep, content: Annotated[str, Form(min_length=1, max_length=MAX_INPUT_CHARS)]
) -> Response:
    """A new conversation, titled by its first message."""
    ctx.require_submit()
    tenant_id = ctx.principal.tenant_id
    thread = await threads_service.create_thread(
        ctx.conn, tenant_id=tenant_id, title=content.strip()[:80]
    )
    await threads_service.post_message(
        ctx.conn, tenant_id=tenant_id, thread_id=thread.id, body=MessageCreate(content=content)
    )
    return RedirectResponse(f"/console/chat/{thread.id}", status_code=303)


@router.get("/{thread_id}", response_class=HTMLResponse, include_in_schema=False)
async def conversation(request: Request, ctx: PageDep, thread_id: uuid.UUID) -> HTMLResponse:
    tenant_id = ctx.principal.tenant_id
    thread = await threads_service.get_thread(ctx.conn, tenant_id=tenant_id, thread_id=thread_id)
    messages = await threads_service.list_messages(
        ctx.conn, tenant_id=tenant_id, thread_id=thread_id, after=0, limit=500
    )
    items, next_cursor = await threads_service.list_threads(ctx.conn, tenant_id=tenant_id, limit=50)
    runs, _ = await tasks_service.list_tasks(
        ctx.conn, tenant_id=tenant_id, thread_id=thread_id, limit=tasks_service.MAX_PAGE
    )
    # The routing: which crew took each message (none while the router still asks back).
    crews = {task.id: task.crew for task in runs}
    answered = {m.task_id for m in messages if m.role == "agent"}
    # The newest question still being worked on: its run is shown live under the conversation.
    working = next(
        (m for m in reversed(messages) if m.role == "user" and m.task_id not in answered), None
    )
    task = (
        await actions_service.get_task_with_actions(
            ctx.conn, tenant_id=tenant_id, task_id=working.task_id
        )
        if working and working.task_id
        else None
    )
    return page(
        request,
        "chat.html",
        ctx,
        threads=items,
        next_cursor=next_cursor,
        thread=thread,
        messages=messages,
        crews=crews,
        task=task,
    )


@router.post("/{thread_id}", include_in_schema=False)
async def post(
    ctx: FormDep,
    thread_id: uuid.UUID,
    content: Annotated[str, Form(min_length=1, max_length=MAX_INPUT_CHARS)],
) -> Response:
    ctx.require_submit()
    await threads_service.post_message(
        ctx.conn,
        tenant_id=ctx.principal.tenant_id,
        thread_id=thread_id,
        body=MessageCreate(content=content),
    )
    return RedirectResponse(f"/console/chat/{thread_id}", status_code=303)
