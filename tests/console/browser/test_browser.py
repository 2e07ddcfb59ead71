"""The console in real Chromium, as a person uses it: sign in, watch runs arrive and fill in,
approve what a crew proposes, chat; a viewer only looks; every page is keyboard- and
screen-reader-friendly by axe-core, fits a 390-px phone and loads nothing from another host."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from httpx import AsyncClient
from playwright.async_api import Route, expect

from tests.conftest import TenantHandle
from tests.console.browser.conftest import Tab
from tests.console.helpers import a_run_today_in_one_zone
from tests.fakes.llm import FakeLLMServer
from tests.integration.runtime.conftest import store_openai_key, wait_for_status
from tests.integration.runtime.connected import Connected
from tests.integration.runtime.test_crews import propose_above_policy

AXE = Path(__file__).with_name("vendor") / "axe-core" / "axe.min.js"
CREWS = ("marketing", "analytics", "ecommerce", "operations")


async def test_signing_in_shows_the_tenant_and_the_four_crews(
    tab: Tab, tenant_a: TenantHandle
) -> None:
    await tab.sign_in(tenant_a.email, tenant_a.password)
    await expect(tab.page.get_by_role("heading", name="Agents")).to_be_visible()
    await expect(tab.page.locator(".tenant")).to_have_text(tenant_a.name)
    for crew in CREWS:
        await expect(tab.page.get_by_role("heading", name=crew, exact=True)).to_be_visible()


async def test_a_wrong_password_says_so(tab: Tab, tenant_a: TenantHandle) -> None:
    await tab.sign_in(tenant_a.email, "not the password")
    await expect(tab.page.get_by_role("alert")).to_have_text("Wrong e-mail or password.")
    await expect(tab.page.get_by_label("E-mail")).to_have_value(tenant_a.email)


@pytest.mark.alone  # timed: the run appears within 1.5 s
async def test_a_run_submitted_through_the_api_appears_live_and_its_trace_fills_in(
    tab: Tab, api: AsyncClient, tenant_a: TenantHandle, fake_llm: FakeLLMServer
) -> None:
    await store_openai_key(api, tenant_a)
    await tab.sign_in(tenant_a.email, tenant_a.password)
    await expect(tab.page.locator("#live-state")).to_have_text("Live")
    fake_llm.script_openai(tool_calls=[("tenant_data", {"resource": "clients"})], latency=0.8)
    fake_llm.script_openai("Acme has no clients yet.", usage=(80, 12), latency=0.8)

    submitted = time.monotonic()
    response = await api.post(
        "/v1/tasks",
        json={"crew": "assistant", "input": "How many clients do we have?"},
        headers=tenant_a.headers,
    )
    task_id = response.json()["id"]
    run_link = tab.page.locator(f'#recent-runs li[data-task="{task_id}"] a')
    await expect(run_link).to_be_visible(timeout=5_000)
    appeared = time.monotonic() - submitted
    assert appeared < 1.5, f"the run took {appeared:.2f} s to appear"

    await run_link.click()
    trace = tab.page.locator("#trace")
    await expect(trace.locator('[data-type="tool.call"]')).to_contain_text("tenant_data")
    await expect(trace.locator('[data-type="task.succeeded"]')).to_contain_text(
        "Acme has no clients yet.", timeout=20_000
    )
    await expect(tab.page.locator("#run-status")).to_have_text("succeeded")
    # Each model call shows its own tokens, cost and latency.
    model_call = trace.locator('[data-type="llm.call"]').last
    await expect(model_call).to_contain_text("80 in")
    await expect(model_call).to_contain_text("12 out tokens")
    await expect(model_call.locator(".cost")).to_have_text(re.compile(r"^\$0\.\d{4}$"))
    await expect(model_call.locator(".latency")).to_have_text(re.compile(r"^\d[\d,]* ms$"))


async def test_the_home_page_ends_on_a_quick_runs_last_state(
    tab: Tab, api: AsyncClient, tenant_a: TenantHandle, fake_llm: FakeLLMServer
) -> None:
    """Several events inside the redraw throttle's window: the page still settles on the last."""
    await store_openai_key(api, tenant_a)
    await tab.sign_in(tenant_a.email, tenant_a.password)
    await expect(tab.page.locator("#live-state")).to_have_text("Live")
    fake_llm.script_openai("Done at once.", usage=(10, 2))

    response = await api.post(
        "/v1/tasks", json={"crew": "assistant", "input": "Quick one"}, headers=tenant_a.headers
    )
    task_id = response.json()["id"]
    assert (await wait_for_status(api, tenant_a, task_id))["status"] == "succeeded"
    row = tab.page.locator(f'#recent-runs li[data-task="{task_id}"] .status')
    await expect(row).to_have_text("succeeded", timeout=3_000)


async def submit_runs(
    api: AsyncClient, tenant: TenantHandle, fake_llm: FakeLLMServer, texts: list[str]
) -> list[str]:
    for _ in texts:
        fake_llm.script_openai("Done.", usage=(10, 2), latency=0.3)
    return [
        (
            await api.post(
                "/v1/tasks", json={"crew": "assistant", "input": text}, headers=tenant.headers
            )
        ).json()["id"]
        for text in texts
    ]


async def until_shown_succeeded(tab: Tab, task_ids: list[str], texts: list[str]) -> None:
    for task_id, text in zip(task_ids, texts, strict=True):
        row = tab.page.locator(f'#recent-runs li[data-task="{task_id}"]')
        await expect(row.locator("a")).to_have_text(text, timeout=5_000)
        await expect(row.locator(".status")).to_have_text("succeeded", timeout=15_000)


async def test_the_home_page_draws_runs_from_their_events_not_a_panel_request_each(
    tab: Tab, api: AsyncClient, tenant_a: TenantHandle, fake_llm: FakeLLMServer
) -> None:
    """Each run's row follows its events (queued, started, succeeded) from their own data, even
    with the panels' answers held back; five runs, fifteen events, cost a request or two, for
    the figures, once the events pause."""
    await store_openai_key(api, tenant_a)
    await tab.sign_in(tenant_a.email, tenant_a.password)
    await expect(tab.page.locator("#live-state")).to_have_text("Live")
    runs_today = tab.page.locator('[data-crew="assistant"] [data-figure="runs_today"]')

    held: list[Route] = []

    async def hold(route: Route) -> None:
        held.append(route)

    await tab.page.route("**/console/panels", hold)
    first = ["Count the leads of week 1", "Count the leads of week 2"]
    await until_shown_succeeded(tab, await submit_runs(api, tenant_a, fake_llm, first), first)
    await expect(runs_today).to_have_text("0")  # the figures wait for the panels
    for route in held:
        await route.continue_()
    await tab.page.unroute("**/console/panels")
    await expect(runs_today).to_have_text("2", timeout=10_000)

    requests: list[str] = []
    tab.page.on(
        "request",
        lambda request: requests.append(request.url) if "/console/panels" in request.url else None,
    )
    more = [f"Count the leads of month {month}" for month in range(5)]
    await until_shown_succeeded(tab, await submit_runs(api, tenant_a, fake_llm, more), more)
    assert len(requests) <= 3, f"{len(requests)} panel requests for 15 events"
    await expect(runs_today).to_have_text("7", timeout=10_000)


async def test_the_first_page_after_signing_in_counts_today_in_the_browsers_zone(
    tab_in_zone: Any, tenant_a: TenantHandle, owner_pool: asyncpg.Pool
) -> None:
    today_there = await a_run_today_in_one_zone(owner_pool, tenant_a.id, "Pacific/Kiritimati")
    tab = await tab_in_zone("Pacific/Kiritimati")
    await tab.sign_in(tenant_a.email, tenant_a.password)
    runs_today = tab.page.locator('[data-crew="analytics"] [data-figure="runs_today"]')
    await expect(runs_today).to_have_text("1" if today_there else "0")


async def test_approving_a_proposed_action_runs_it_and_shows_it_executed(
    tab: Tab,
    api: AsyncClient,
    tenant_a: TenantHandle,
    fake_llm: FakeLLMServer,
    connected: Connected,
) -> None:
    task_id, action, campaign = await propose_above_policy(api, tenant_a, fake_llm, connected)
    await tab.sign_in(tenant_a.email, tenant_a.password)
    await tab.open("/console/approvals")
    card = tab.page.locator(f"#action-{action['id']}")
    await expect(card).to_contain_text(action["summary"])
    await expect(card.locator("pre").first).to_contain_text(f'"campaign_id": "{campaign["id"]}"')

    await card.get_by_label("Reason (optional)").fill("No sales since October.")
    await card.get_by_role("button", name="Approve").click()

    decided = tab.page.locator(f'li[data-action="{action["id"]}"]')
    await expect(decided.locator(".status")).to_have_text("executed", timeout=15_000)
    await expect(decided).to_contain_text("No sales since October.")
    audit = tab.page.locator(f'#audit tr[data-action="{action["id"]}"] td:nth-child(2)')
    await expect(audit).to_have_text(["executed", "execution started", "approved", "proposed"])
    assert campaign["status"] == "PAUSED"
    assert (await wait_for_status(api, tenant_a, task_id))["status"] == "succeeded"


async def test_a_viewer_sees_pending_actions_but_cannot_approve_them(
    tab: Tab,
    api: AsyncClient,
    tenant_a: TenantHandle,
    fake_llm: FakeLLMServer,
    connected: Connected,
    make_user: Any,
) -> None:
    _, action, campaign = await propose_above_policy(api, tenant_a, fake_llm, connected)
    email, password = await make_user(tenant_a, "viewer")
    await tab.sign_in(email, password)
    await tab.open("/console/approvals")
    card = tab.page.locator(f"#action-{action['id']}")
    await expect(card).to_contain_text(action["summary"])
    await expect(card.get_by_role("button", name="Approve")).to_have_count(0)
    await expect(tab.page.get_by_text("deciding needs the admin or owner role")).to_be_visible()

    # Nor can the viewer's session approve by posting the form itself.
    token = await tab.page.locator("body").get_attribute("hx-headers")
    csrf = json.loads(token or "{}")["X-CSRF-Token"]
    response = await tab.page.request.post(
        f"{tab.url}/console/approvals/{action['id']}/approve",
        form={"csrf_token": csrf},
        max_redirects=0,
    )
    assert response.status == 403
    still = await api.get(f"/v1/actions/{action['id']}", headers=tenant_a.headers)
    assert still.json()["status"] == "pending"
    assert campaign["status"] != "PAUSED"


async def test_a_chat_message_is_routed_answered_and_shown(
    tab: Tab, api: AsyncClient, tenant_a: TenantHandle, fake_llm: FakeLLMServer
) -> None:
    await store_openai_key(api, tenant_a)
    fake_llm.script_openai('{"crew": "assistant", "question": null, "reason": "About leads."}')
    fake_llm.script_openai("Three leads wait for a follow-up.", usage=(40, 8))
    await tab.sign_in(tenant_a.email, tenant_a.password)
    await tab.open("/console/chat")
    await tab.page.get_by_label("Your message").fill("Which leads should we follow up?")
    await tab.page.get_by_role("button", name="Send").click()

    messages = tab.page.locator("#messages")
    await expect(messages.locator(".message-user")).to_contain_text(
        "Which leads should we follow up?"
    )
    answer = messages.locator(".message-agent")
    await expect(answer).to_contain_text("Three leads wait for a follow-up.", timeout=20_000)
    await expect(answer.locator(".routed")).to_have_text("assistant")
    threads = tab.page.get_by_role("navigation", name="Conversations")
    await expect(threads).to_contain_text("Which leads should we follow up?")


async def test_every_page_passes_axe_fits_a_phone_and_stays_on_the_hub(
    phone_tab: Tab, api: AsyncClient, tenant_a: TenantHandle
) -> None:
    task = await api.post("/v1/tasks", json={"input": "Hello"}, headers=tenant_a.headers)
    thread = await api.post("/v1/threads", json={"title": "Weekly"}, headers=tenant_a.headers)
    pages = [
        "/console",
        "/console/runs",
        f"/console/runs/{task.json()['id']}",
        "/console/approvals",
        "/console/chat",
        f"/console/chat/{thread.json()['id']}",
        "/console/usage",
        "/console/settings",
    ]
    page = phone_tab.page
    await phone_tab.open("/console/login")
    await check_page(phone_tab, "/console/login")
    await phone_tab.sign_in(tenant_a.email, tenant_a.password)
    for path in pages:
        await phone_tab.open(path)
        await check_page(phone_tab, path)
    await phone_tab.open("/docs")
    await expect(page.locator(".swagger-ui .title")).to_contain_text("opshub")


async def check_page(tab: Tab, path: str) -> None:
    page = tab.page
    await page.wait_for_load_state("load")
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{path} scrolls sideways by {overflow} px at 390 px"
    await page.add_script_tag(path=AXE)
    result = await page.evaluate(
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact,"
        " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 3)})))"
    )
    serious = [v for v in result if v["impact"] in ("serious", "critical")]
    assert serious == [], f"{path}: {serious}"


async def test_a_settings_form_shows_its_error_next_to_the_field_then_creates_the_schedule(
    tab: Tab, api: AsyncClient, tenant_a: TenantHandle
) -> None:
    await tab.sign_in(tenant_a.email, tenant_a.password)
    await tab.open("/console/settings")
    form = tab.page.locator("form", has=tab.page.get_by_role("button", name="Create schedule"))
    await form.get_by_label("Crew").select_option("analytics")
    await form.get_by_label("Request").fill("Weekly numbers for the team")
    await form.get_by_label("Cron").fill("0 25 * * MON")
    await form.get_by_label("Time zone").fill("Europe/Berlin")
    await form.get_by_role("button", name="Create schedule").click()

    cron = tab.page.get_by_label("Cron")
    await expect(cron).to_have_attribute("aria-invalid", "true")
    error = tab.page.locator("#err-schedule-cron")
    await expect(error).to_contain_text("not a valid cron expression")
    await expect(error).to_contain_text("(invalid_request)")
    await expect(cron).to_have_accessible_description(re.compile("not a valid cron expression"))
    await expect(tab.page.get_by_label("Request")).to_have_value("Weekly numbers for the team")

    await cron.fill("0 9 * * MON")
    await tab.page.get_by_role("button", name="Create schedule").click()
    schedule = tab.page.locator("[data-schedule]")
    await expect(schedule).to_contain_text("Weekly numbers for the team")
    await expect(schedule).to_contain_text("Europe/Berlin")
    await expect(schedule.locator("p.meta time")).to_have_count(3)  # the next three firings
    await schedule.get_by_role("button", name="Disable").click()
    await expect(tab.page.locator("[data-schedule] .status")).to_have_text("disabled")
    (stored,) = (await api.get("/v1/schedules", headers=tenant_a.headers)).json()
    assert stored["enabled"] is False


async def test_a_model_key_added_in_settings_is_checked_healthy_and_a_refused_one_says_why(
    tab: Tab, tenant_a: TenantHandle, fake_llm: FakeLLMServer
) -> None:
    await tab.sign_in(tenant_a.email, tenant_a.password)
    await tab.open("/console/settings")
    await tab.page.get_by_label("Provider", exact=True).select_option("openai")
    await tab.page.get_by_label("API key", exact=True).fill("sk-settings-good-0123456789")
    await tab.page.get_by_role("button", name="Save and check").click()

    health = tab.page.locator("#health-openai")
    await expect(health.locator(".status")).to_have_text("healthy", timeout=10_000)
    assert "sk-settings-good" not in await tab.page.content()  # the secret never comes back

    fake_llm.script_error("openai_models", 401)
    await tab.page.get_by_label("API key", exact=True).fill("sk-settings-revoked-987654321")
    await tab.page.get_by_role("button", name="Save and check").click()
    await expect(health.locator(".status")).to_have_text("invalid", timeout=10_000)
    refused = tab.page.get_by_role("alert")
    await expect(refused).to_contain_text("The provider refused this key")
    await expect(refused).to_contain_text("Incorrect API key provided")


async def test_a_viewer_sees_settings_but_every_form_is_disabled(
    tab: Tab, tenant_a: TenantHandle, make_user: Any
) -> None:
    email, password = await make_user(tenant_a, "viewer")
    await tab.sign_in(email, password)
    await tab.open("/console/settings")

    await expect(tab.page.locator("#read-only")).to_contain_text("can look at settings")
    await expect(tab.page.get_by_role("button", name="Save and check")).to_be_disabled()
    await expect(tab.page.get_by_role("button", name="Create schedule")).to_be_disabled()
    await expect(tab.page.get_by_role("button", name="Create key")).to_have_count(0)
    await expect(tab.page.get_by_label("Model for marketing")).to_be_disabled()


async def test_the_usage_charts_draw_with_their_tables(
    tab: Tab, api: AsyncClient, tenant_a: TenantHandle, fake_llm: FakeLLMServer
) -> None:
    await store_openai_key(api, tenant_a)
    fake_llm.script_openai("Done.", usage=(300, 40))
    task = await api.post(
        "/v1/tasks", json={"crew": "assistant", "input": "Count"}, headers=tenant_a.headers
    )
    await wait_for_status(api, tenant_a, task.json()["id"])
    await tab.sign_in(tenant_a.email, tenant_a.password)
    await tab.open("/console/usage")

    for chart in ("cost-byok", "runs", "durations"):
        canvas = tab.page.locator(f'[data-chart="{chart}"] canvas')
        await expect(canvas).to_have_count(1)
        box = await canvas.bounding_box()
        assert box and box["width"] > 200 and box["height"] > 100, chart
    runs = tab.page.locator('[data-chart="runs"]')
    await expect(runs.locator(".u-legend")).to_contain_text("succeeded")
    table = tab.page.locator("#runs-h ~ details table")
    await expect(table).to_contain_text("succeeded")
