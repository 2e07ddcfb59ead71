"""Home: the agent panels, redrawn whenever the tenant-wide event stream says something changed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from opshub.api.deps import StateDep
from opshub.console.deps import Page, PageDep
from opshub.console.render import live_page, page
from opshub.panels import service as panels_service

router = APIRouter(prefix="/console")


async def _panels(ctx: Page, state: StateDep) -> dict[str, Any]:
    tenant_id = ctx.principal.tenant_id
    return {
        "agents": await panels_service.agents(ctx.conn, tenant_id=tenant_id, tz=ctx.tz),
        "activity": await panels_service.activity(
            ctx.conn, tenant_id=tenant_id, settings=state.settings
        ),
    }


@router.get("", response_class=HTMLResponse, include_in_schema=False)
async def home(request: Request, ctx: PageDep, state: StateDep) -> HTMLResponse:
    return await live_page(request, "home.html", ctx, **await _panels(ctx, state))


@router.get("/panels", response_class=HTMLResponse, include_in_schema=False)
async def panels(request: Request, ctx: PageDep, state: StateDep) -> HTMLResponse:
    return page(request, "_panels.html", ctx, **await _panels(ctx, state))
