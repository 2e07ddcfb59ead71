"""Runs: the list with filters and paging, and a run's page, whose trace fills in live."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, BackgroundTasks, Header, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from opshub.actions import service as actions_service
from opshub.api.deps import StateDep
from opshub.api.state import AppState
from opshub.console.deps import FormDep, PageDep
from opshub.console.render import page, templates
from opshub.crews.registry import CREWS
from opshub.db.engine import tenant_transaction
from opshub.tasks import service as tasks_service
from opshub.tasks.models import TERMINAL_EVENTS, TaskStatus
from opshub.tasks.schemas import TaskEvent

router = APIRouter(prefix="/console/runs")
KEEPALIVE_SECONDS = 15.0
PAGE_SIZE = 25


@router.get("", response_class=HTMLResponse, include_in_schema=False)
async def runs(
    request: Request,
    ctx: PageDep,
    status: Annotated[TaskStatus | None, Query()] = None,
    crew: Annotated[str | None, Query(max_length=64)] = None,
    day: Annotated[str | None, Query(max_length=10)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> HTMLResponse:
    """``day``: runs created that day in the viewer's zone (an empty field: any day)."""
    try:
        on = date.fromisoformat(day) if day else None
    except ValueError:
        on = None
    zone = ZoneInfo(ctx.tz)
    start = datetime.combine(on, time(), zone) if on else None
    items, next_cursor = await tasks_service.list_tasks(
        ctx.conn,
        tenant_id=ctx.principal.tenant_id,
        status=status,
        crew=crew or None,
        created_from=start,
        created_before=datetime.combine(on + timedelta(days=1), time(), zone) if on else None,
        cursor=cursor,
        limit=PAGE_SIZE,
    )
    return page(
        request,
        "runs.html",
        ctx,
        tasks=items,
        next_cursor=next_cursor,
        status=status.value if status else "",
        crew=crew or "",
        day=on.isoformat() if on else "",
        bad_day=bool(day) and on is None,
        crews=list(CREWS),
        statuses=[s.value for s in TaskStatus],
    )


@router.get("/{task_id}", response_class=HTMLResponse, include_in_schema=False)
async def run(request: Request, ctx: PageDep, task_id: uuid.UUID) -> HTMLResponse:
    tenant_id = ctx.principal.tenant_id
    task = await actions_service.get_task_with_actions(
        ctx.conn, tenant_id=tenant_id, task_id=task_id
    )
    events = await tasks_service.events_after(
        ctx.conn, tenant_id=tenant_id, task_id=task_id, after=0
    )
    actions, _ = await actions_service.list_actions(
        ctx.conn, tenant_id=tenant_id, task_id=task_id, limit=actions_service.MAX_PAGE
    )
    ended = any(event.type in TERMINAL_EVENTS for event in events)
    return page(
        request,
        "run.html",
        ctx,
        task=task,
        events=streamed_text_joined(events),
        actions=actions,
        ended=ended,
        last_seq=events[-1].seq if events else 0,
    )


def streamed_text_joined(events: list[TaskEvent]) -> list[TaskEvent]:
    """A run's page shows an agent's streamed tokens as one step of text, not a step a word (the
    live stream still sends them one by one; the page redraws joined when the run ends)."""
    joined: list[TaskEvent] = []
    for event in events:
        last = joined[-1] if joined else None
        if event.type == "token" and last and last.type == "token" and last.agent == event.agent:
            joined[-1] = last.model_copy(update={"text": (last.text or "") + (event.text or "")})
        else:
            joined.append(event)
    return joined


def _frame(name: str, html: str, seq: int | None = None) -> bytes:
    lines = "".join(f"data: {line}\n" for line in html.splitlines() or [""])
    ident = f"id: {seq}\n" if seq is not None else ""
    return f"{ident}event: {name}\n{lines}\n".encode()


async def _trace(
    state: AppState, *, tenant_id: uuid.UUID, task_id: uuid.UUID, after: int
) -> AsyncIterator[bytes]:
    step = templates.env.get_template("_step.html")
    last = after
    async with state.live.watch(task_id) as live:
        yield b": watching\n\n"
        while True:
            async with tenant_transaction(state.app_pool, tenant_id) as conn:
                events: list[TaskEvent] = await tasks_service.events_after(
                    conn, tenant_id=tenant_id, task_id=task_id, after=last
                )
            for event in events:
                yield _frame("step", step.render(event=event), event.seq)
                last = event.seq
                if event.type in TERMINAL_EVENTS:
                    yield _frame("end", event.type)
                    return
            if events:
                continue
            try:
                await asyncio.wait_for(live.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                yield b": keep-alive\n\n"


@router.get("/{task_id}/trace", include_in_schema=False)
async def trace(
    ctx: PageDep,
    state: StateDep,
    task_id: uuid.UUID,
    after: Annotated[int, Query(ge=0)] = 0,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
) -> Response:
    """The run's steps after ``after`` as rendered list items (Server-Sent Events)."""
    tenant_id = ctx.principal.tenant_id
    await tasks_service.get_task(ctx.conn, tenant_id=tenant_id, task_id=task_id)  # 404 first
    # An EventSource reconnecting sends the last step it got.
    resume = max(after, int(last_event_id) if last_event_id and last_event_id.isdigit() else 0)
    return StreamingResponse(
        _trace(state, tenant_id=tenant_id, task_id=task_id, after=resume),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.post("/{task_id}/cancel", include_in_schema=False)
async def cancel(
    ctx: FormDep, state: StateDep, task_id: uuid.UUID, later: BackgroundTasks
) -> Response:
    ctx.require_submit()
    _, event = await actions_service.cancel_task_with_actions(
        ctx.conn, tenant_id=ctx.principal.tenant_id, task_id=task_id
    )
    if event is not None:
        # After the response, so after the commit (as the API does).
        later.add_task(state.live.publish, {task_id: [event.model_dump(mode="json")]})
    return RedirectResponse(f"/console/runs/{task_id}", status_code=303)


@router.post("/{task_id}/retry", include_in_schema=False)
async def retry(ctx: FormDep, task_id: uuid.UUID) -> Response:
    ctx.require_submit()
    task = await tasks_service.retry_task(
        ctx.conn, tenant_id=ctx.principal.tenant_id, task_id=task_id
    )
    return RedirectResponse(f"/console/runs/{task.id}", status_code=303)
