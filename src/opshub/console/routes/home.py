"""Home: the agent panels. The page patches runs from the tenant's event stream itself and
fetches the panels again only now and then, for the figures (see static/home.js)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from opshub.api.deps import StateDep
from opshub.console.deps import Page, PageDep
from opshub.console.render import page
from opshub.outbox import service as outbox
from opshub.panels import service as panels_service

router = APIRouter(prefix="/console")
CURSOR_HEADER = "X-Opshub-Cursor"


async def _panels(ctx: Page, state: StateDep) -> dict[str, Any]:
    """The panels and the stream's cursor read before them: every event after it may be newer
    than the figures, so the page draws those events over them again."""
    tenant_id = ctx.principal.tenant_id
    cursor = await outbox.latest_cursor(ctx.conn, tenant_id=tenant_id)
    return {
        "events_after": cursor,
        "recent_limit": panels_service.DEFAULT_LIMIT,
        "agents": await panels_service.agents(ctx.conn, tenant_id=tenant_id, tz=ctx.tz),
        "activity": await panels_service.activity(
            ctx.conn, tenant_id=tenant_id, settings=state.settings, plan=ctx.session.tenant_plan
        ),
    }


@router.get("", response_class=HTMLResponse, include_in_schema=False)
async def home(request: Request, ctx: PageDep, state: StateDep) -> HTMLResponse:
    return page(request, "home.html", ctx, **await _panels(ctx, state))


@router.get("/panels", response_class=HTMLResponse, include_in_schema=False)
async def panels(request: Request, ctx: PageDep, state: StateDep) -> HTMLResponse:
    values = await _panels(ctx, state)
    response = page(request, "_panels.html", ctx, **values)
    response.headers[CURSOR_HEADER] = str(values["events_after"])
    return response
