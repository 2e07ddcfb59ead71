"""``opshub.client`` covers every operation of the API: a test fails when the OpenAPI document
gains an operation the client has no call for, and each group of endpoints is driven through
the client against the real app, with typed answers and the envelope's code on errors."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal

import pytest
from fastapi import FastAPI
from httpx import ASGITransport

from opshub.actions.schemas import PoliciesPut, PolicyRule
from opshub.api.routes.admin import TenantCreate
from opshub.app import create_app
from opshub.auth.models import Role
from opshub.client import AsyncClient, Client, calls
from opshub.client.errors import (
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
)
from opshub.config import Settings
from opshub.credentials.models import Provider
from opshub.data.schemas import (
    CampaignCreate,
    ClientCreate,
    LeadCreate,
    LeadUpdate,
    ReportCreate,
)
from opshub.llm.fallback import ModelChoice
from opshub.mcp_servers.schemas import McpServerPut
from opshub.memory.schemas import MemoryCreate, MemoryImportItem
from opshub.schedules.schemas import ScheduleCreate, ScheduleUpdate
from tests.conftest import TenantHandle
from tests.integration.runtime.test_sse import StreamingASGITransport

# The two streams are methods of the clients rather than calls: they yield events as they come.
STREAMS = {"task_events": "events", "tenant_events": "tenant_events"}
ADMIN_TOKEN = "platform-admin-token-for-tests"


def test_every_operation_of_the_api_has_a_client_call(settings: Settings) -> None:
    document = create_app(settings).openapi()
    operations = [
        operation["operationId"]
        for methods in document["paths"].values()
        for operation in methods.values()
    ]
    assert len(operations) > 80

    missing = [
        op
        for op in operations
        if not callable(getattr(calls, op, None))
        and not (
            op in STREAMS and hasattr(Client, STREAMS[op]) and hasattr(AsyncClient, STREAMS[op])
        )
    ]

    assert missing == [], f"operations without a call in opshub.client.calls: {missing}"


def hub_for(app: FastAPI, key: str | None) -> AsyncClient:
    return AsyncClient("http://opshub", key, transport=ASGITransport(app=app))


@pytest.fixture
async def hub(app: FastAPI, tenant_a: TenantHandle) -> AsyncIterator[AsyncClient]:
    async with hub_for(app, tenant_a.api_key) as client:
        yield client


async def test_who_am_i_keys_and_tokens(
    hub: AsyncClient, app: FastAPI, tenant_a: TenantHandle
) -> None:
    me = await hub.send(calls.who_am_i())
    assert (me.tenant_id, me.role) == (tenant_a.id, Role.owner)

    created = await hub.send(calls.create_key(name="ci", role="viewer"))
    assert created.key.startswith("ohk_")
    assert created.id in {key.id for key in await hub.send(calls.list_keys())}
    async with hub_for(app, created.key) as viewer:
        with pytest.raises(PermissionDeniedError) as refused:
            await viewer.send(calls.create_key(name="escalate", role="owner"))
        assert refused.value.code == "forbidden"
    revoked = await hub.send(calls.revoke_key(created.id))
    assert revoked.revoked_at is not None

    async with hub_for(app, None) as anonymous:
        token = await anonymous.send(
            calls.create_token(email=tenant_a.email, password=tenant_a.password)
        )
        with pytest.raises(AuthenticationError) as missing:
            await anonymous.send(calls.who_am_i())
        assert missing.value.code == "missing_credentials"
    async with hub_for(app, token.access_token) as person:
        assert (await person.send(calls.who_am_i())).kind.value == "user"


async def test_platform_admin_creates_and_lists_tenants(app: FastAPI) -> None:
    async with hub_for(app, ADMIN_TOKEN) as admin:
        created = await admin.send(
            calls.create_tenant(
                TenantCreate(
                    name="Client Co",
                    owner_email=f"o-{uuid.uuid4().hex[:8]}@example.com",
                    password="correct horse battery",
                )
            )
        )
        assert created.api_key.startswith("ohk_")
        assert created.id in {t.id for t in await admin.send(calls.list_tenants())}


async def test_tenant_settings_round_trip(hub: AsyncClient) -> None:
    budget = await hub.send(calls.put_budget(monthly_platform_usd=Decimal("120.50")))
    assert budget.monthly_platform_usd == Decimal("120.50")
    assert (await hub.send(calls.get_budget())).monthly_platform_usd == Decimal("120.50")

    choice = ModelChoice(provider="anthropic", model="claude-sonnet-4-5")  # type: ignore[arg-type]
    assert (await hub.send(calls.put_fallback(choice))).fallback == choice
    assert (await hub.send(calls.get_fallback())).fallback == choice
    assert (await hub.send(calls.put_fallback(None))).fallback is None

    crews = {crew.name for crew in await hub.send(calls.list_crews())}
    assert "analytics" in crews
    crew = await hub.send(
        calls.put_crew_settings("analytics", provider="openai", model="gpt-4o-mini")
    )
    assert crew.model is not None and crew.model.model == "gpt-4o-mini"
    with pytest.raises(NotFoundError):
        await hub.send(calls.put_crew_settings("no-such-crew", provider="openai", model="x"))

    rule = PolicyRule(kind="ads.campaign_status", auto_approve=True)  # type: ignore[arg-type]
    policies = await hub.send(calls.put_policies(PoliciesPut(rules=[rule])))
    assert [r.kind for r in policies.rules] == [rule.kind]
    assert (await hub.send(calls.get_policies())).rules == policies.rules

    secret = await hub.send(calls.rotate_webhook_secret(overlap_seconds=60))
    assert secret.secret.startswith("whsec_")

    settings = await hub.send(calls.update_memory_settings(extraction=False))
    assert settings.extraction is False
    assert (await hub.send(calls.get_memory_settings())).extraction is False


async def test_credentials_and_mcp_servers(hub: AsyncClient) -> None:
    # Nothing listens there: stored, and its check says so (the secret never comes back).
    secret = {"base_url": "http://127.0.0.1:9/v1", "api_key": "sk-local-000000000000"}
    stored = await hub.send(calls.put_credential("openai_compatible", secret=secret))
    assert stored.provider == "openai_compatible"
    assert "sk-local" not in stored.model_dump_json()
    checked = await hub.send(calls.check_credential("openai_compatible"))
    assert checked.provider == "openai_compatible"
    listed = {c.provider: c for c in await hub.send(calls.list_credentials())}
    assert listed[Provider.openai_compatible].source == "byok"
    assert await hub.send(calls.delete_credential("openai_compatible")) is None
    listed = {c.provider: c for c in await hub.send(calls.list_credentials())}
    assert listed[Provider.openai_compatible].source == "none"

    server = McpServerPut(
        url="http://127.0.0.1:9/mcp",  # type: ignore[arg-type]
        secret="mcp-token-123",
        crews=["ecommerce"],
        side_effecting_tools=["refund_order"],
    )
    put = await hub.send(calls.put_mcp_server("shop", server))
    assert (put.name, put.has_secret, put.crews) == ("shop", True, ["ecommerce"])
    assert (await hub.send(calls.get_mcp_server("shop"))).side_effecting_tools == ["refund_order"]
    assert [s.name for s in await hub.send(calls.list_mcp_servers())] == ["shop"]
    assert await hub.send(calls.delete_mcp_server("shop")) is None
    with pytest.raises(NotFoundError):
        await hub.send(calls.get_mcp_server("shop"))


async def test_tasks_webhooks_and_schedules(hub: AsyncClient) -> None:
    task = await hub.send(calls.submit_task(input="Report spend", crew="analytics"))
    assert (await hub.send(calls.list_task_webhooks(task.id))).items == []
    with pytest.raises(NotFoundError):
        await hub.send(calls.redeliver_task_webhook(task.id, 1))
    await hub.send(calls.cancel_task(task.id))
    retried = await hub.send(calls.retry_task(task.id))
    assert retried.status.value == "queued"

    schedule = await hub.send(
        calls.create_schedule(
            ScheduleCreate(crew="analytics", input="Weekly spend", cron="0 9 * * MON")
        )
    )
    assert (schedule.timezone, schedule.enabled) == ("UTC", True)
    paused = await hub.send(calls.update_schedule(schedule.id, ScheduleUpdate(enabled=False)))
    assert paused.enabled is False
    assert (await hub.send(calls.get_schedule(schedule.id))).enabled is False
    assert schedule.id in {s.id for s in await hub.send(calls.list_schedules())}
    assert (await hub.send(calls.list_runs(schedule.id))).items == []
    assert await hub.send(calls.delete_schedule(schedule.id)) is None
    with pytest.raises(NotFoundError):
        await hub.send(calls.get_schedule(schedule.id))


async def test_threads_and_their_messages(hub: AsyncClient) -> None:
    thread = await hub.send(calls.create_thread(title="Spring"))
    assert (await hub.send(calls.get_thread(thread.id))).title == "Spring"
    assert thread.id in {t.id for t in (await hub.send(calls.list_threads())).items}
    posted = await hub.send(calls.post_message(thread.id, content="Hello", crew="assistant"))
    assert posted.task.thread_id == thread.id
    messages = (await hub.send(calls.list_messages(thread.id))).items
    assert [m.content for m in messages] == ["Hello"]


async def test_actions_and_the_audit_trail(hub: AsyncClient) -> None:
    assert (await hub.send(calls.list_actions(status="pending"))).items == []
    assert (await hub.send(calls.list_audit())).items == []
    missing = uuid.uuid4()
    for call in (
        calls.get_action(missing),
        calls.approve_action(missing, reason="fine"),
        calls.reject_action(missing),
    ):
        with pytest.raises(NotFoundError) as refused:
            await hub.send(call)
        assert refused.value.code == "not_found"


async def test_memory_saved_found_imported_and_forgotten(hub: AsyncClient) -> None:
    saved = await hub.send(
        calls.add_memory(MemoryCreate(content="Acme wants proposals by email.", scope="tenant"))
    )
    assert saved.outcome == "created"
    assert (await hub.send(calls.get_memory(saved.memory.id))).content == saved.memory.content
    found = await hub.send(calls.search_memories(query="how does Acme want proposals?"))
    assert found.items[0].id == saved.memory.id

    imported = await hub.send(
        calls.import_memories(
            [MemoryImportItem(content="Ship with tracking.", scope="crew:ecommerce")]
        )
    )
    assert imported.inserted == 1
    assert (await hub.send(calls.forget_memories(scope="crew:ecommerce"))).deleted == 1
    assert await hub.send(calls.delete_memory(saved.memory.id)) is None
    with pytest.raises(NotFoundError):
        await hub.send(calls.get_memory(saved.memory.id))
    await hub.send(calls.add_memory(MemoryCreate(content="One more.")))
    assert (await hub.send(calls.erase_memories())).deleted >= 1
    with pytest.raises(InvalidRequestError) as refused:
        await hub.send(calls.forget_memories(scope="nowhere:x"))
    assert (refused.value.status, refused.value.code) == (422, "invalid_scope")


async def test_data_of_every_kind(hub: AsyncClient) -> None:
    client = await hub.send(calls.create_client(ClientCreate(name="Acme", industry="Outdoor")))
    lead = await hub.send(calls.create_lead(LeadCreate(name="Jane", client_id=client.id)))
    campaign = await hub.send(
        calls.create_campaign(CampaignCreate(name="Spring", channel="meta_ads"))  # type: ignore[arg-type]
    )
    report = await hub.send(calls.create_report(ReportCreate(title="Weekly")))

    assert (await hub.send(calls.get_client(client.id))).industry == "Outdoor"
    assert (await hub.send(calls.get_campaign(campaign.id))).status == "draft"
    assert (await hub.send(calls.get_report(report.id))).kind == "general"
    updated = await hub.send(calls.update_lead(lead.id, LeadUpdate(status="contacted")))  # type: ignore[arg-type]
    assert (updated.status, updated.name) == ("contacted", "Jane")
    assert [x.id for x in (await hub.send(calls.list_leads(client_id=client.id))).items] == [
        lead.id
    ]
    assert (await hub.send(calls.list_clients(industry="Outdoor"))).items[0].id == client.id
    assert (await hub.send(calls.list_campaigns(channel="meta_ads"))).items[0].id == campaign.id
    assert (await hub.send(calls.list_reports(q="week"))).items[0].id == report.id

    from_csv = await hub.send(calls.import_leads("name,email\nBob,bob@example.com\n"))
    from_models = await hub.send(calls.import_clients([ClientCreate(name="Blue")]))
    assert (from_csv.imported, from_models.imported) == (1, 1)
    assert (await hub.send(calls.get_lead(from_csv.ids[0]))).email == "bob@example.com"
    imported_campaigns = await hub.send(
        calls.import_campaigns([CampaignCreate(name="Fall", channel="google_ads")])  # type: ignore[arg-type]
    )
    imported_reports = await hub.send(calls.import_reports([ReportCreate(title="Monthly")]))
    assert (imported_campaigns.imported, imported_reports.imported) == (1, 1)

    for delete, get, row_id in (
        (calls.delete_lead, calls.get_lead, lead.id),
        (calls.delete_client, calls.get_client, client.id),
        (calls.delete_campaign, calls.get_campaign, campaign.id),
        (calls.delete_report, calls.get_report, report.id),
    ):
        assert await hub.send(delete(row_id)) is None
        with pytest.raises(NotFoundError):
            await hub.send(get(row_id))


async def test_health_metrics_and_panels(hub: AsyncClient) -> None:
    assert await hub.send(calls.healthz()) == {"status": "ok"}
    assert (await hub.send(calls.readyz()))["status"] == "ready"
    assert "# TYPE" in await hub.send(calls.metrics())

    assert {row.crew for row in (await hub.send(calls.agents_panel())).crews} >= {"analytics"}
    usage = await hub.send(
        calls.usage_panel(start=date(2026, 1, 1), end=date(2026, 1, 31), group_by="crew")
    )
    assert (usage.from_, usage.to, usage.group_by.value) == (
        date(2026, 1, 1),
        date(2026, 1, 31),
        "crew",
    )
    activity = await hub.send(calls.activity_panel(limit=5, tz="Asia/Tokyo"))
    assert (activity.recent_tasks, activity.pending_approvals, activity.tz) == (
        [],
        [],
        "Asia/Tokyo",
    )
    trends = await hub.send(calls.trends_panel(start=date(2026, 1, 1), end=date(2026, 1, 7)))
    assert (trends.from_, trends.to, len(trends.days)) == (date(2026, 1, 1), date(2026, 1, 7), 7)


async def test_tenant_events_replay_after_a_cursor(
    app: FastAPI, hub: AsyncClient, tenant_a: TenantHandle
) -> None:
    task = await hub.send(calls.submit_task(input="Hello", crew="assistant"))
    await hub.send(calls.cancel_task(task.id))

    transport = StreamingASGITransport(app)
    async with AsyncClient("http://opshub", tenant_a.api_key, transport=transport) as watcher:
        stream = watcher.tenant_events(after=0)
        async with asyncio.timeout(10):
            queued, cancelled = await anext(stream), await anext(stream)
        await stream.aclose()

    assert (queued.type, cancelled.type) == ("task.queued", "task.cancelled")
    assert queued.data["task_id"] == cancelled.data["task_id"] == str(task.id)
    assert 0 < queued.cursor < cancelled.cursor
