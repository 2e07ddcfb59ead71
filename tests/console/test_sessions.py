"""Console sessions: sign-in sets an HttpOnly, SameSite cookie for a server-side session; forms
need the session's CSRF token; signing out, expiry and disabling the user end the session; a
session sees only its own tenant."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from opshub.auth import sessions
from tests.conftest import TenantHandle
from tests.console.helpers import csrf_of, sign_in
from tests.integration.runtime.test_sse import StreamingASGITransport


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[AsyncClient]:
    """A client that keeps cookies and does not follow redirects, like a browser's jar."""
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://opshub") as c:
        yield c


async def signed_in(browser: AsyncClient, tenant: TenantHandle) -> AsyncClient:
    response = await sign_in(browser, tenant.email, tenant.password)
    assert response.status_code == 303, response.text
    return browser


async def test_signing_in_sets_an_httponly_samesite_session_cookie_and_shows_the_tenant(
    browser: AsyncClient, tenant_a: TenantHandle
) -> None:
    response = await sign_in(browser, tenant_a.email, tenant_a.password)
    assert response.status_code == 303
    assert response.headers["location"] == "/console"
    cookie = next(
        value
        for name, value in response.headers.multi_items()
        if name == "set-cookie" and value.startswith(f"{sessions.COOKIE}=")
    ).lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/" in cookie
    home = await browser.get("/console")
    assert home.status_code == 200
    assert tenant_a.name in home.text
    assert "default-src 'self'" in home.headers["content-security-policy"]


async def test_a_wrong_password_says_so_and_starts_no_session(
    browser: AsyncClient, tenant_a: TenantHandle
) -> None:
    response = await sign_in(browser, tenant_a.email, "not the password")
    assert response.status_code == 401
    assert "Wrong e-mail or password" in response.text
    assert sessions.COOKIE not in browser.cookies
    assert (await browser.get("/console")).headers["location"] == "/console/login"


async def test_the_login_limit_applies_to_the_console(
    browser: AsyncClient, tenant_a: TenantHandle, app: FastAPI
) -> None:
    limit = app.state.opshub.settings.login_attempts_per_minute
    # The limit counts per clock minute: start early in one, so the attempts share it.
    if time.time() % 60 > 40:
        await asyncio.sleep(60 - time.time() % 60)
    for _ in range(limit):
        await sign_in(browser, tenant_a.email, "wrong")
    response = await sign_in(browser, tenant_a.email, tenant_a.password)
    assert response.status_code == 429
    assert "Too many sign-in attempts" in response.text


async def test_a_login_form_without_its_csrf_token_is_refused(
    browser: AsyncClient, tenant_a: TenantHandle
) -> None:
    response = await browser.post(
        "/console/login", data={"email": tenant_a.email, "password": tenant_a.password}
    )
    assert response.status_code == 403
    assert sessions.COOKIE not in browser.cookies


async def test_a_form_without_the_sessions_csrf_token_changes_nothing(
    browser: AsyncClient, client: AsyncClient, tenant_a: TenantHandle
) -> None:
    await signed_in(browser, tenant_a)
    task = await client.post("/v1/tasks", json={"input": "hi"}, headers=tenant_a.headers)
    task_id = task.json()["id"]
    refused = await browser.post(f"/console/runs/{task_id}/cancel", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    still = await client.get(f"/v1/tasks/{task_id}", headers=tenant_a.headers)
    assert still.json()["status"] == "queued"
    page = await browser.get(f"/console/runs/{task_id}")
    accepted = await browser.post(
        f"/console/runs/{task_id}/cancel", data={"csrf_token": csrf_of(page.text)}
    )
    assert accepted.status_code == 303
    ended = await client.get(f"/v1/tasks/{task_id}", headers=tenant_a.headers)
    assert ended.json()["status"] == "cancelled"


async def test_signing_out_ends_the_session_for_every_copy_of_the_cookie(
    browser: AsyncClient, app: FastAPI, tenant_a: TenantHandle
) -> None:
    await signed_in(browser, tenant_a)
    token = browser.cookies[sessions.COOKIE]
    home = await browser.get("/console")
    out = await browser.post("/console/logout", data={"csrf_token": csrf_of(home.text)})
    assert out.status_code == 303
    async with AsyncClient(
        transport=ASGITransport(app=app),
        base_url="http://opshub",
        cookies={sessions.COOKIE: token},
    ) as copy:
        assert (await copy.get("/console")).headers["location"] == "/console/login"
        assert (await copy.get("/v1/events")).status_code == 401


async def test_an_expired_session_signs_the_user_out(
    browser: AsyncClient, owner_pool: asyncpg.Pool, tenant_a: TenantHandle
) -> None:
    await signed_in(browser, tenant_a)
    async with owner_pool.acquire() as conn:
        await conn.execute(
            "UPDATE console_sessions SET expires_at = now() - interval '1 second' "
            "WHERE tenant_id = $1",
            tenant_a.id,
        )
    response = await browser.get("/console")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login"


async def test_disabling_the_user_ends_their_session(
    browser: AsyncClient, owner_pool: asyncpg.Pool, tenant_a: TenantHandle
) -> None:
    await signed_in(browser, tenant_a)
    async with owner_pool.acquire() as conn:
        await conn.execute("UPDATE users SET disabled_at = now() WHERE tenant_id = $1", tenant_a.id)
    assert (await browser.get("/console")).headers["location"] == "/console/login"


async def test_another_tenants_run_is_not_found_in_the_console(
    browser: AsyncClient, client: AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    await signed_in(browser, tenant_a)
    theirs = await client.post("/v1/tasks", json={"input": "secret"}, headers=tenant_b.headers)
    response = await browser.get(f"/console/runs/{theirs.json()['id']}")
    assert response.status_code == 404
    assert "secret" not in response.text


async def test_the_session_cookie_opens_the_tenant_event_stream_without_a_header(
    browser: AsyncClient, app: FastAPI, tenant_a: TenantHandle
) -> None:
    await signed_in(browser, tenant_a)
    async with (
        AsyncClient(
            transport=StreamingASGITransport(app),
            base_url="http://opshub",
            cookies={sessions.COOKIE: browser.cookies[sessions.COOKIE]},
        ) as event_source,
        event_source.stream("GET", "/v1/events") as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
