"""/v1/tasks: submit, read, list, cancel and retry tasks; their events as Server-Sent Events."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, BackgroundTasks, Header, Query, Response
from fastapi.responses import StreamingResponse

from opshub.actions import service as actions_service
from opshub.api.deps import MemberDep, StateDep, ViewerDep
from opshub.db.engine import tenant_transaction
from opshub.observability.metrics import counted_subscriber
from opshub.tasks import service as tasks_service
from opshub.tasks.errors import IdempotencyKeyMismatchError
from opshub.tasks.models import TERMINAL_EVENTS, TaskStatus
from opshub.tasks.schemas import TaskCreate, TaskEvent, TaskPage, TaskRead, check_webhook_url

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])
KEEPALIVE_SECONDS = 15.0
POLL_SECONDS = 1.0


@router.post("", response_model=TaskRead, status_code=202)
async def submit_task(
    ctx: MemberDep,
    state: StateDep,
    body: TaskCreate,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> TaskRead:
    if idempotency_key and body.idempotency_key and idempotency_key != body.idempotency_key:
        raise IdempotencyKeyMismatchError(
            "the Idempotency-Key header and idempotency_key in the body differ"
        )
    if idempotency_key:
        body = body.model_copy(update={"idempotency_key": idempotency_key})
    if body.webhook_url is not None:
        check_webhook_url(body.webhook_url, allow_internal_urls=state.settings.allow_internal_urls)
    task, created = await tasks_service.submit_task(
        ctx.conn, tenant_id=ctx.principal.tenant_id, body=body
    )
    if not created:
        response.status_code = 200
    return task


@router.get("", response_model=TaskPage)
async def list_tasks(
    ctx: ViewerDep,
    status: TaskStatus | None = None,
    crew: Annotated[str | None, Query(max_length=64)] = None,
    thread_id: uuid.UUID | None = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=tasks_service.MAX_PAGE)] = 50,
) -> TaskPage:
    items, next_cursor = await tasks_service.list_tasks(
        ctx.conn,
        tenant_id=ctx.principal.tenant_id,
        status=status,
        crew=crew,
        thread_id=thread_id,
        cursor=cursor,
        limit=limit,
    )
    return TaskPage(items=items, next_cursor=next_cursor)


@router.get("/{task_id}", response_model=TaskRead)
async def get_task(ctx: ViewerDep, task_id: uuid.UUID) -> TaskRead:
    return await actions_service.get_task_with_actions(
        ctx.conn, tenant_id=ctx.principal.tenant_id, task_id=task_id
    )


@router.post("/{task_id}/cancel", response_model=TaskRead, status_code=202)
async def cancel_task(
    ctx: MemberDep, state: StateDep, task_id: uuid.UUID, background: BackgroundTasks
) -> TaskRead:
    task, event = await actions_service.cancel_task_with_actions(
        ctx.conn, tenant_id=ctx.principal.tenant_id, task_id=task_id
    )
    if event is not None:
        # Background tasks run after the response, so after the transaction has committed.
        background.add_task(state.live.publish, {task_id: [event.model_dump(mode="json")]})
    return task


@router.post("/{task_id}/retry", response_model=TaskRead, status_code=202)
async def retry_task(ctx: MemberDep, task_id: uuid.UUID) -> TaskRead:
    return await tasks_service.retry_task(
        ctx.conn, tenant_id=ctx.principal.tenant_id, task_id=task_id
    )


def _sse(event: TaskEvent | dict[str, Any]) -> bytes:
    data = (
        event.model_dump(mode="json", exclude_none=True) if isinstance(event, TaskEvent) else event
    )
    return (
        f"id: {data['seq']}\nevent: {data['type']}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"
    )


def _resume_point(last_event_id: str | None) -> int:
    try:
        return max(int(last_event_id or 0), 0)
    except ValueError:
        return 0


@router.get(
    "/{task_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def task_events(
    ctx: ViewerDep,
    state: StateDep,
    task_id: uuid.UUID,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
) -> Response:
    """Every step of the run in order; resumes after ``Last-Event-ID``; ends with the task."""
    tenant_id = ctx.principal.tenant_id
    await tasks_service.get_task(ctx.conn, tenant_id=tenant_id, task_id=task_id)  # 404 first
    resume_from = _resume_point(last_event_id)
    if resume_from and await tasks_service.ended_by(
        ctx.conn, tenant_id=tenant_id, task_id=task_id, seq=resume_from
    ):
        # The client has the final event (an EventSource reconnects whenever a stream ends):
        # nothing more will come, and 204 tells it to stop reconnecting.
        return Response(status_code=204)

    async def stream() -> AsyncIterator[bytes]:
        last = resume_from
        async with state.live.watch(task_id) as live:
            # A comment (ignored by SSE clients) at once: the stream's first write, with its
            # one-time costs on both ends, is not the first event's.
            yield b": watching\n\n"
            read_stored = True
            while True:
                if read_stored:
                    # The replay, and whatever a live message missed.
                    async with tenant_transaction(state.app_pool, tenant_id) as conn:
                        stored = await tasks_service.events_after(
                            conn, tenant_id=tenant_id, task_id=task_id, after=last
                        )
                    for event in stored:
                        yield _sse(event)
                        last = event.seq
                        if event.type in TERMINAL_EVENTS:
                            return
                    if stored:
                        continue  # there may be more pages
                polling = state.live.polling()  # Redis is away: read the stored events
                try:
                    batch = await asyncio.wait_for(
                        live.get(), POLL_SECONDS if polling else KEEPALIVE_SECONDS
                    )
                except TimeoutError:
                    if not polling:
                        yield b": keep-alive\n\n"
                    read_stored = True
                    continue
                read_stored = not batch  # empty: Redis went away or came back
                # A batch leaves as one write: with hundreds of watchers, writes are the cost.
                frames: list[bytes] = []
                ended = False
                for event_data in batch:
                    seq = event_data["seq"]
                    if seq <= last:
                        continue
                    if seq > last + 1:
                        read_stored = True  # a gap: read it back from the database
                        break
                    frames.append(_sse(event_data))
                    last = seq
                    if event_data["type"] in TERMINAL_EVENTS:
                        ended = True
                        break
                if frames:
                    yield b"".join(frames)
                if ended:
                    return

    return StreamingResponse(
        counted_subscriber(stream()),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
