"""/v1/events: the tenant's domain events as one Server-Sent Events stream, for open dashboards."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from opshub.api.deps import ReaderDep, StateDep
from opshub.api.state import AppState
from opshub.db.engine import tenant_transaction
from opshub.outbox import service as outbox
from opshub.outbox.service import TenantEvent

router = APIRouter(prefix="/v1/events", tags=["events"])
KEEPALIVE_SECONDS = 15.0
PAGE = 500
# While a committed event waits behind an older open transaction (most often another run's
# ending, committed a few ms later) no wake-up will come for it: look again after 25 ms, then
# twice as long each time up to 200 ms, until it shows.
FIRST_RECHECK_SECONDS = 0.025
MAX_RECHECK_SECONDS = 0.2


def frame(event: TenantEvent) -> bytes:
    data = {"type": event.type, "ts": event.ts.isoformat().replace("+00:00", "Z"), **event.data}
    return (
        f"id: {event.cursor}\nevent: {event.type}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"
    )


def resume_point(last_event_id: str | None) -> int | None:
    try:
        return max(int(last_event_id), 0) if last_event_id else None
    except ValueError:
        return None


async def stream_tenant_events(
    state: AppState, *, tenant_id: uuid.UUID, after: int
) -> AsyncIterator[bytes]:
    """Every event after the cursor, then each new one as it commits, until the client leaves."""
    async with state.tenant_events.watch(tenant_id) as wake:
        yield b": watching\n\n"
        last, recheck = after, 0.0
        while True:
            async with tenant_transaction(state.app_pool, tenant_id) as conn:
                page = await outbox.events_after(conn, tenant_id=tenant_id, after=last, limit=PAGE)
            if page.events:
                yield b"".join(frame(event) for event in page.events)
                last = page.events[-1].cursor
                if len(page.events) == PAGE:
                    continue
            if page.held_back:
                recheck = min(2 * recheck, MAX_RECHECK_SECONDS) or FIRST_RECHECK_SECONDS
            else:
                recheck = 0.0
            try:
                await asyncio.wait_for(wake.wait(), recheck or KEEPALIVE_SECONDS)
                recheck = 0.0
            except TimeoutError:
                if not recheck:
                    yield b": keep-alive\n\n"
            wake.clear()


@router.get(
    "",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def tenant_events(
    ctx: ReaderDep,
    state: StateDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
    after: Annotated[
        int | None,
        Query(ge=0, description="Start after this cursor (a page rendered at it); default: now."),
    ] = None,
) -> StreamingResponse:
    """Task transitions, actions, credential health and schedule firings of the caller's tenant.
    ``id:`` is a tenant-wide cursor: send it back as ``Last-Event-ID`` to resume without loss.
    Without it the stream starts with what happens next."""
    tenant_id = ctx.principal.tenant_id
    resumed = resume_point(last_event_id)
    after = resumed if resumed is not None else after
    if after is None:
        after = await outbox.latest_cursor(ctx.conn, tenant_id=tenant_id)
    return StreamingResponse(
        stream_tenant_events(state, tenant_id=tenant_id, after=after),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
