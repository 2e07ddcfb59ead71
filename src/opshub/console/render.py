"""Templates and the filters they format numbers with; the console rounds only what it shows."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader

from opshub.console.deps import CSRF_FIELD, CSRF_HEADER, Page
from opshub.outbox import service as outbox

# Everything the console loads comes from the hub itself.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
# Templates are files of the package: compiled once, not looked at again on every page.
templates = Jinja2Templates(
    env=Environment(
        loader=FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=True,
        auto_reload=False,
    )
)

# What changes a panel: every domain event the tenant-wide stream sends (API.md v1.1).
LIVE_EVENTS = (
    "task.queued",
    "task.started",
    "task.awaiting_approval",
    "task.succeeded",
    "task.failed",
    "task.cancelled",
    "action.proposed",
    "action.approved",
    "action.rejected",
    "action.executed",
    "action.failed",
    "credential.health_changed",
    "schedule.fired",
)


NOTHING = "\N{EN DASH}"  # a figure that does not exist yet


def money(value: Decimal | str | None) -> str:
    """Dollars to the cent, and sub-cent amounts to four places so they don't read as zero."""
    if value is None:
        return NOTHING
    amount = Decimal(value)
    if amount and abs(amount) < Decimal("0.01"):
        return f"${amount:.4f}"
    return f"${amount:,.2f}"


def count(value: int | None) -> str:
    return NOTHING if value is None else f"{value:,}"


def percent(value: float | None) -> str:
    return NOTHING if value is None else f"{value:.0%}"


def seconds(value: float | None) -> str:
    if value is None:
        return NOTHING
    return f"{value:.1f} s" if value < 60 else f"{value / 60:.1f} min"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


for name, function in {
    "money": money,
    "count": count,
    "percent": percent,
    "seconds": seconds,
    "pretty_json": pretty_json,
    "iso": iso,
}.items():
    templates.env.filters[name] = function
templates.env.globals.update(
    csrf_field=CSRF_FIELD, csrf_header=CSRF_HEADER, live_events=LIVE_EVENTS
)


async def live_page(request: Request, template: str, ctx: Page, **values: Any) -> HTMLResponse:
    """A page that stays current: its event stream starts at the cursor it was rendered at, so
    nothing that happens between rendering and connecting is missed."""
    cursor = await outbox.latest_cursor(ctx.conn, tenant_id=ctx.principal.tenant_id)
    return page(request, template, ctx, events_after=cursor, **values)


def page(
    request: Request, template: str, ctx: Page | None, status_code: int = 200, **values: Any
) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        template,
        {"page": ctx, **values},
        status_code=status_code,
        headers=SECURITY_HEADERS,
    )
