"""Console settings, usage and runs pages over HTTP, as a browser posts them: forms are refused as
the API refuses them, with the message next to the field; a viewer changes nothing; an API key is
shown once; the runs list filters by day in the viewer's zone."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from opshub.auth import crypto
from tests.conftest import TenantHandle
from tests.console.helpers import a_run_today_in_one_zone, csrf_of, runs_today, sign_in


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://opshub") as c:
        yield c


async def settings_csrf(browser: AsyncClient, tenant: TenantHandle) -> str:
    assert (await sign_in(browser, tenant.email, tenant.password)).status_code == 303
    return csrf_of((await browser.get("/console/settings")).text)


def field_error(html: str, form: str, field: str) -> str:
    """The error shown under a field, found by the id the field points at."""
    assert f'aria-describedby="err-{form}-{field}"' in html, f"{field} is not marked invalid"
    match = re.search(rf'<p class="field-error" id="err-{form}-{field}">([^<]*)</p>', html)
    assert match, f"no error under {field}"
    return match[1]


async def test_a_bad_cron_is_refused_as_the_api_refuses_it_next_to_its_field(
    browser: AsyncClient, client: AsyncClient, tenant_a: TenantHandle
) -> None:
    csrf = await settings_csrf(browser, tenant_a)
    form = {
        "csrf_token": csrf,
        "crew": "analytics",
        "input": "Weekly report",
        "cron": "0 25 * * MON",
        "timezone": "Europe/Berlin",
        "enabled": "on",
    }

    response = await browser.post("/console/settings/schedules", data=form)

    assert response.status_code == 422
    api = await client.post(
        "/v1/schedules",
        json={k: v for k, v in form.items() if k not in ("csrf_token", "enabled")},
        headers=tenant_a.headers,
    )
    assert api.status_code == 422
    error = api.json()["error"]
    assert field_error(response.text, "schedule", "cron") == (
        f"{error['message']} ({error['code']})".replace("'", "&#39;")
    )
    assert "Weekly report" in response.text  # the form comes back as it was filled in
    listed = await client.get("/v1/schedules", headers=tenant_a.headers)
    assert listed.json() == []

    response = await browser.post(
        "/console/settings/schedules",
        data={**form, "timezone": "Mars/Olympus", "cron": "0 9 * * MON"},
    )
    assert response.status_code == 422
    assert "not an IANA time zone" in field_error(response.text, "schedule", "timezone")

    response = await browser.post(
        "/console/settings/schedules", data={**form, "cron": "0 9 * * MON"}
    )
    assert response.status_code == 303
    (schedule,) = (await client.get("/v1/schedules", headers=tenant_a.headers)).json()
    assert (schedule["crew"], schedule["cron"], schedule["enabled"]) == (
        "analytics",
        "0 9 * * MON",
        True,
    )
    page = (await browser.get("/console/settings")).text
    assert f'data-schedule="{schedule["id"]}"' in page
    assert page.count("<time datetime=") >= 3  # its next firings

    disabled = await browser.post(
        f"/console/settings/schedules/{schedule['id']}/enabled",
        data={"csrf_token": csrf, "enabled": "false"},
    )
    assert disabled.status_code == 303
    again = await client.get(f"/v1/schedules/{schedule['id']}", headers=tenant_a.headers)
    assert again.json()["enabled"] is False


async def test_a_crew_model_from_an_unknown_provider_is_refused_next_to_the_provider(
    browser: AsyncClient, client: AsyncClient, tenant_a: TenantHandle
) -> None:
    csrf = await settings_csrf(browser, tenant_a)

    refused = await browser.post(
        "/console/settings/crews/marketing",
        data={"csrf_token": csrf, "provider": "mistral", "model": "large"},
    )
    saved = await browser.post(
        "/console/settings/crews/marketing",
        data={"csrf_token": csrf, "provider": "anthropic", "model": "claude-haiku-4-5"},
    )

    assert refused.status_code == 422
    assert field_error(refused.text, "crew-marketing", "provider")
    assert saved.status_code == 303
    crews = (await client.get("/v1/crews", headers=tenant_a.headers)).json()
    marketing = next(crew for crew in crews if crew["name"] == "marketing")
    assert marketing["model"] == {"provider": "anthropic", "model": "claude-haiku-4-5"}


async def test_a_new_api_key_is_shown_once_and_can_be_revoked(
    browser: AsyncClient, client: AsyncClient, tenant_a: TenantHandle
) -> None:
    csrf = await settings_csrf(browser, tenant_a)

    empty = await browser.post("/console/settings/api-keys", data={"csrf_token": csrf, "name": ""})
    created = await browser.post(
        "/console/settings/api-keys",
        data={"csrf_token": csrf, "name": "Reporting", "role": "viewer"},
    )

    assert empty.status_code == 422 and field_error(empty.text, "api-key", "name")
    assert created.status_code == 201
    key = re.search(r'<pre id="new-api-key">(ohk_[^<]+)</pre>', created.text)
    assert key, created.text
    assert (
        await client.get("/v1/panels/agents", headers={"Authorization": f"Bearer {key[1]}"})
    ).status_code == 200
    later = (await browser.get("/console/settings")).text
    assert key[1] not in later and "Reporting" in later
    key_id = re.search(r'data-key="([^"]+)"><th scope="row">Reporting', later)
    assert key_id
    revoked = await browser.post(
        f"/console/settings/api-keys/{key_id[1]}/revoke", data={"csrf_token": csrf}
    )
    assert revoked.status_code == 303
    denied = await client.get("/v1/panels/agents", headers={"Authorization": f"Bearer {key[1]}"})
    assert denied.status_code == 401


async def test_a_viewer_sees_settings_but_changes_nothing(
    browser: AsyncClient, client: AsyncClient, owner_pool: asyncpg.Pool, tenant_a: TenantHandle
) -> None:
    async with owner_pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO users (tenant_id, email, password_hash, role)"
            " VALUES ($1, $2, $3, 'viewer')",
            tenant_a.id,
            "viewer@example.com",
            crypto.hash_password("viewer horse battery"),
        )
    assert (await sign_in(browser, "viewer@example.com", "viewer horse battery")).status_code == 303
    page = await browser.get("/console/settings")
    csrf = csrf_of(page.text)

    assert page.status_code == 200
    assert "can look at settings, not change them" in page.text
    assert page.text.count("<fieldset disabled>") >= 3
    posts = {
        "/console/settings/keys": {"provider": "openai", "api_key": "sk-viewer-1234567890"},
        "/console/settings/crews/marketing": {"provider": "openai", "model": "gpt-4o"},
        "/console/settings/schedules": {"input": "x", "cron": "0 9 * * MON", "timezone": "UTC"},
        "/console/settings/api-keys": {"name": "mine"},
    }
    for url, form in posts.items():
        response = await browser.post(url, data={"csrf_token": csrf, **form})
        assert response.status_code == 403, url
    assert (await client.get("/v1/schedules", headers=tenant_a.headers)).json() == []
    credentials = (await client.get("/v1/credentials", headers=tenant_a.headers)).json()
    assert {c["provider"]: c["source"] for c in credentials}["openai"] != "byok"


async def test_settings_forms_need_the_sessions_csrf_token(
    browser: AsyncClient, client: AsyncClient, tenant_a: TenantHandle
) -> None:
    await settings_csrf(browser, tenant_a)

    response = await browser.post(
        "/console/settings/schedules",
        data={"csrf_token": "forged", "input": "x", "cron": "0 9 * * MON", "timezone": "UTC"},
    )

    assert response.status_code == 403
    assert (await client.get("/v1/schedules", headers=tenant_a.headers)).json() == []


async def test_the_runs_list_filters_by_the_viewers_day(
    browser: AsyncClient, owner_pool: asyncpg.Pool, tenant_a: TenantHandle
) -> None:
    # 23:30 UTC on Dec 1st is Dec 2nd in Tokyo.
    late = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)
    async with owner_pool.acquire() as conn:
        for when, text in ((late, "late-evening run"), (late - timedelta(hours=12), "noon run")):
            await conn.execute(
                "INSERT INTO tasks (tenant_id, input, status, created_at)"
                " VALUES ($1, $2, 'queued', $3)",
                tenant_a.id,
                text,
                when,
            )
    await sign_in(browser, tenant_a.email, tenant_a.password)

    utc = (await browser.get("/console/runs", params={"day": "2026-12-01"})).text
    browser.cookies.set("opshub_tz", "Asia/Tokyo")
    tokyo = (await browser.get("/console/runs", params={"day": "2026-12-02"})).text
    none = (await browser.get("/console/runs", params={"day": "2026-12-05"})).text

    assert "late-evening run" in utc and "noon run" in utc
    assert "late-evening run" in tokyo and "noon run" not in tokyo
    assert "No runs match these filters" in none


async def test_the_usage_page_has_each_chart_with_its_table(
    browser: AsyncClient, owner_pool: asyncpg.Pool, tenant_a: TenantHandle
) -> None:
    async with owner_pool.acquire() as conn:
        task_id = await conn.fetchval(
            "INSERT INTO tasks (tenant_id, crew, input, status, created_at, started_at,"
            " finished_at) VALUES ($1, 'marketing', 'x', 'succeeded', now(),"
            " now() - interval '30 seconds', now()) RETURNING id",
            tenant_a.id,
        )
        await conn.execute(
            "INSERT INTO usage_records (tenant_id, task_id, provider, model, input_tokens,"
            " output_tokens, cost_usd, billed_to) VALUES ($1, $2, 'openai', 'gpt-4o-mini', 10, 1,"
            " 0.000469, 'byok')",
            tenant_a.id,
            task_id,
        )
    await sign_in(browser, tenant_a.email, tenant_a.password)

    page = (await browser.get("/console/usage")).text

    for chart in ("cost-byok", "runs", "durations"):
        assert f'data-chart="{chart}"' in page, chart
    assert 'data-chart="cost-platform"' not in page
    assert "Nothing on the platform's keys in these 30 days" in page.replace("&#39;", "'")
    assert page.count("<summary>Table</summary>") == 3
    assert "$0.0005" in page  # the byok table, rounded for the eye only
    assert '"values": [' in page or '"values":[' in page


async def test_policies_are_saved_as_the_api_saves_them_and_a_bad_amount_sits_by_its_field(
    browser: AsyncClient, client: AsyncClient, tenant_a: TenantHandle
) -> None:
    csrf = await settings_csrf(browser, tenant_a)
    kind = "ads.budget_change"
    form = {
        "csrf_token": csrf,
        f"{kind}.auto_approve": "on",
        f"{kind}.max_amount": "-5",
        f"{kind}.currency": "USD",
    }

    refused = await browser.post("/console/settings/policies", data=form)
    saved = await browser.post(
        "/console/settings/policies", data={**form, f"{kind}.max_amount": "50"}
    )

    assert refused.status_code == 422
    assert "greater than or equal to 0" in field_error(
        refused.text, "policies", f"{kind}.max_amount"
    )
    assert saved.status_code == 303
    rules = (await client.get("/v1/policies", headers=tenant_a.headers)).json()["rules"]
    assert [(r["kind"], r["auto_approve"], r["max_amount"], r["currency"]) for r in rules] == [
        (kind, True, "50.00", "USD")
    ]


async def test_memory_is_searched_forgotten_one_by_one_and_by_scope(
    browser: AsyncClient, client: AsyncClient, tenant_a: TenantHandle
) -> None:
    ids = []
    for content, scope in (
        ("Our shop ships only within the EU.", "tenant"),
        ("The spring campaign targets runners.", "crew:marketing"),
        ("Weekly reports go to Jane.", "crew:marketing"),
    ):
        response = await client.post(
            "/v1/memories", json={"content": content, "scope": scope}, headers=tenant_a.headers
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["memory"]["id"])
    csrf = await settings_csrf(browser, tenant_a)

    page = (await browser.get("/console/settings", params={"memory_scope": "crew:marketing"})).text
    assert "spring campaign" in page and "ships only within the EU" not in page
    bad = (await browser.get("/console/settings", params={"memory_scope": "galaxy:far"})).text
    assert "(invalid_scope)" in bad and 'id="err-memory-scope"' in bad

    one = await browser.post(f"/console/settings/memory/{ids[0]}/forget", data={"csrf_token": csrf})
    refused = await browser.post(
        "/console/settings/memory/forget-scope", data={"csrf_token": csrf, "scope": "galaxy:far"}
    )
    scope = await browser.post(
        "/console/settings/memory/forget-scope",
        data={"csrf_token": csrf, "scope": "crew:marketing"},
    )

    assert one.status_code == 303
    assert refused.status_code == 422
    assert "(invalid_scope)" in field_error(refused.text, "forget-scope", "scope")
    assert scope.status_code == 303 and "forgotten=2" in scope.headers["location"]
    left = await client.get("/v1/memories", headers=tenant_a.headers)
    assert left.json()["items"] == []


@pytest.mark.parametrize("sent", ["Pacific/Kiritimati", "Mars/Olympus_Mons", ""])
async def test_the_first_page_after_signing_in_counts_today_in_the_zone_the_form_sent(
    browser: AsyncClient, owner_pool: asyncpg.Pool, tenant_a: TenantHandle, sent: str
) -> None:
    """The sign-in form carries the browser's zone; one that is not a zone (or none) is UTC."""
    today_in_kiritimati = await a_run_today_in_one_zone(
        owner_pool, tenant_a.id, "Pacific/Kiritimati"
    )
    response = await sign_in(browser, tenant_a.email, tenant_a.password, tz=sent)
    assert response.status_code == 303

    home = await browser.get("/console")
    today = today_in_kiritimati if sent == "Pacific/Kiritimati" else not today_in_kiritimati
    assert runs_today(home.text, "analytics") == ("1" if today else "0")
    assert browser.cookies.get("opshub_tz") == (sent if sent == "Pacific/Kiritimati" else None)
