"""Signing in to the console as a browser would: the form's CSRF token, then the session cookie."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import httpx

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "the page has no CSRF field"
    return match[1]


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str, *, tz: str | None = None
) -> httpx.Response:
    """``tz``: what the form's hidden field carries, the browser's zone (none: no script ran)."""
    form = await client.get("/console/login")
    assert form.status_code == 200
    data = {"email": email, "password": password, "csrf_token": csrf_of(form.text)}
    return await client.post("/console/login", data=data | ({"tz": tz} if tz is not None else {}))


def midnight(zone: str, now: datetime) -> datetime:
    local = now.astimezone(ZoneInfo(zone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


async def a_run_today_in_one_zone(pool: asyncpg.Pool, tenant_id: uuid.UUID, zone: str) -> bool:
    """An analytics run started a minute before the later of the two midnights (UTC's and the
    zone's), so that it is today in one of them only; True when that one is the zone's."""
    now = datetime.now(UTC)
    started = max(midnight("UTC", now), midnight(zone, now)) - timedelta(minutes=1)
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO tasks (tenant_id, crew, input, status, created_at, started_at,"
            " finished_at) VALUES ($1, 'analytics', 'Before midnight', 'succeeded', $2, $2, $3)",
            tenant_id,
            started,
            started + timedelta(seconds=10),
        )
    return started >= midnight(zone, now)


def runs_today(html: str, crew: str) -> str:
    """The "Runs today" figure of a crew's card on the home page."""
    card = html.split(f'data-crew="{crew}"', 1)[1]
    match = re.search(r'data-figure="runs_today">([^<]*)<', card)
    assert match, f"no runs today for {crew}"
    return match[1]
