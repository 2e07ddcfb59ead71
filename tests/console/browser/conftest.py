"""The console in a real browser: the hub (API, worker, scheduler) served by uvicorn on loopback,
Debian's chromium driven by Playwright, and the fake model server and connected services of the
runtime tests."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import asyncpg
import pytest
import uvicorn
from httpx import AsyncClient
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Response,
    async_playwright,
)

from opshub.app import create_app
from opshub.auth import crypto
from opshub.config import Settings
from opshub.db.engine import DatabaseUrls
from tests.conftest import TenantHandle
from tests.integration.runtime.conftest import (  # noqa: F401 - fixtures shared with the runtime tests
    connected,
    fake_llm,
    runtime_settings,
)

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="package")
async def hub_url(runtime_settings: Settings, urls: DatabaseUrls) -> AsyncIterator[str]:  # noqa: F811
    """The hub with its worker, over real HTTP, for this package only (its worker would claim
    the tasks that later tests expect to stay queued)."""
    app = create_app(runtime_settings, urls, run_workers=True)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="on",
        # Open event streams would hold a graceful shutdown for ever.
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "the hub did not start"
        await asyncio.sleep(0.05)
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    yield f"http://{host}:{port}"
    server.should_exit = True
    await serving


@pytest.fixture
async def api(hub_url: str) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(base_url=hub_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="package")
async def browser() -> AsyncIterator[Browser]:
    executable = shutil.which("chromium")
    assert executable, "install Debian's chromium (scripts/test does)"
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@dataclass
class Watched:
    """What a page did that a user would not want: script errors, requests to other hosts."""

    origin: str
    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        # A page answered 401 (a wrong password) is logged too: statuses are judged below.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def on_response(self, response: Response) -> None:
        """A script, style or fetch that failed; a page's own status is the test's to check."""
        if response.status >= 400 and response.request.resource_type != "document":
            self.errors.append(f"{response.status} {response.url}")

    def on_request(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme in ("http", "https", "ws", "wss") and (
            f"{parts.scheme}://{parts.netloc}" != self.origin
        ):
            self.foreign.append(url)


@dataclass
class Tab:
    page: Page
    watched: Watched
    url: str

    async def open(self, path: str) -> None:
        await self.page.goto(self.url + path)

    async def sign_in(self, email: str, password: str) -> None:
        await self.open("/console/login")
        await self.page.get_by_label("E-mail").fill(email)
        await self.page.get_by_label("Password").fill(password)
        await self.page.get_by_role("button", name="Sign in").click()


async def _tab(context: BrowserContext, hub_url: str) -> Tab:
    page = await context.new_page()
    watched = Watched(origin=hub_url)
    page.on("console", watched.on_console)
    page.on("pageerror", lambda error: watched.errors.append(str(error)))
    page.on("request", lambda request: watched.on_request(request.url))
    page.on("response", watched.on_response)
    page.set_default_timeout(10_000)
    return Tab(page=page, watched=watched, url=hub_url)


@pytest.fixture
async def tab(browser: Browser, hub_url: str) -> AsyncIterator[Tab]:
    """A fresh browser profile (no cookies); every test ends with no script error and nothing
    loaded from another host."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    opened = await _tab(context, hub_url)
    yield opened
    await context.close()
    assert opened.watched.errors == []
    assert opened.watched.foreign == []


@pytest.fixture
async def tab_in_zone(
    browser: Browser, hub_url: str
) -> AsyncIterator[Callable[[str], Awaitable[Tab]]]:
    """Tabs of a browser whose clock is in the zone given (as a person's abroad would be)."""
    contexts: list[tuple[BrowserContext, Tab]] = []

    async def open_in(zone: str) -> Tab:
        context = await browser.new_context(
            viewport={"width": 1280, "height": 900}, timezone_id=zone
        )
        contexts.append((context, await _tab(context, hub_url)))
        return contexts[-1][1]

    yield open_in
    for context, opened in contexts:
        await context.close()
        assert opened.watched.errors == []
        assert opened.watched.foreign == []


@pytest.fixture
async def phone_tab(browser: Browser, hub_url: str) -> AsyncIterator[Tab]:
    """390 px wide, and scripts may be added (axe-core) despite the console's CSP."""
    context = await browser.new_context(
        viewport={"width": 390, "height": 844}, bypass_csp=True, device_scale_factor=1
    )
    opened = await _tab(context, hub_url)
    yield opened
    await context.close()
    assert opened.watched.errors == []
    assert opened.watched.foreign == []


@pytest.fixture
def make_user(owner_pool: asyncpg.Pool):  # type: ignore[no-untyped-def]
    """Another user of a tenant, with the role given."""

    async def make(tenant: TenantHandle, role: str) -> tuple[str, str]:
        email = f"{role}-{uuid.uuid4().hex[:10]}@example.com"
        password = "viewer horse battery"
        async with owner_pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO users (tenant_id, email, password_hash, role) VALUES ($1, $2, $3, $4)",
                tenant.id,
                email,
                crypto.hash_password(password),
                role,
            )
        return email, password

    return make
