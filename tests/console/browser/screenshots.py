"""The README's screenshots, made by ``scripts/screenshots`` (not collected with the tests).

A tenant with a finished run, an action waiting for approval, a conversation and a schedule, seen
at desktop width, at 390 px and in dark mode (home and usage charts); the PNGs go to
``docs/screenshots/``.
"""

from __future__ import annotations

from pathlib import Path

from httpx import AsyncClient
from playwright.async_api import Browser

from tests.conftest import TenantHandle
from tests.console.browser.conftest import Tab, _tab
from tests.fakes.llm import FakeLLMServer
from tests.integration.runtime.conftest import store_openai_key, wait_for_status
from tests.integration.runtime.connected import Connected
from tests.integration.runtime.test_crews import propose_above_policy

OUT = Path(__file__).parents[3] / "docs" / "screenshots"


async def shoot(
    browser: Browser, hub_url: str, tenant: TenantHandle, name: str, path: str, **options: object
) -> None:
    context = await browser.new_context(**options)  # type: ignore[arg-type]
    tab: Tab = await _tab(context, hub_url)
    await tab.sign_in(tenant.email, tenant.password)
    await tab.open(path)
    await tab.page.wait_for_load_state("networkidle")
    await tab.page.screenshot(path=OUT / f"{name}.png", full_page=True)
    await context.close()


async def test_screenshots(
    browser: Browser,
    hub_url: str,
    api: AsyncClient,
    make_tenant: object,
    fake_llm: FakeLLMServer,
    connected: Connected,
) -> None:
    tenant: TenantHandle = await make_tenant("Acme Outdoor")  # type: ignore[operator]
    await store_openai_key(api, tenant)
    fake_llm.script_openai(tool_calls=[("tenant_data", {"resource": "leads"})], usage=(420, 36))
    fake_llm.script_openai("Two leads wait: Jane Doe and Max Roe.", usage=(610, 48))
    run = await api.post(
        "/v1/tasks",
        json={"crew": "assistant", "input": "Which leads should we follow up this week?"},
        headers=tenant.headers,
    )
    run_id = run.json()["id"]
    await wait_for_status(api, tenant, run_id)
    await propose_above_policy(api, tenant, fake_llm, connected)
    thread = await api.post("/v1/threads", json={"title": "Weekly numbers"}, headers=tenant.headers)
    thread_id = thread.json()["id"]
    fake_llm.script_openai('{"crew": "assistant", "question": null, "reason": "Own records."}')
    fake_llm.script_openai("Revenue was 12,400 USD last week, up 8% on the week before.")
    message = await api.post(
        f"/v1/threads/{thread_id}/messages",
        json={"content": "How much revenue did we make last week?"},
        headers=tenant.headers,
    )
    await wait_for_status(api, tenant, message.json()["task"]["id"])
    await api.post(
        "/v1/schedules",
        json={
            "crew": "analytics",
            "input": "Weekly numbers for the team",
            "cron": "0 9 * * MON",
            "timezone": "Europe/Berlin",
        },
        headers=tenant.headers,
    )

    OUT.mkdir(parents=True, exist_ok=True)
    desktop = {"viewport": {"width": 1280, "height": 860}, "color_scheme": "light"}
    await shoot(browser, hub_url, tenant, "home", "/console", **desktop)
    await shoot(browser, hub_url, tenant, "run-trace", f"/console/runs/{run_id}", **desktop)
    await shoot(browser, hub_url, tenant, "approvals", "/console/approvals", **desktop)
    await shoot(browser, hub_url, tenant, "chat", f"/console/chat/{thread_id}", **desktop)
    await shoot(browser, hub_url, tenant, "usage", "/console/usage", **desktop)
    await shoot(browser, hub_url, tenant, "settings", "/console/settings", **desktop)
    phone = {"viewport": {"width": 390, "height": 844}, "color_scheme": "light"}
    await shoot(browser, hub_url, tenant, "phone", "/console", **phone)
    dark = {"viewport": {"width": 1280, "height": 860}, "color_scheme": "dark"}
    await shoot(browser, hub_url, tenant, "dark", "/console", **dark)
    await shoot(browser, hub_url, tenant, "usage-dark", "/console/usage", **dark)
