"""Each crew end to end: the API, a real worker, the scripted fake model, and the fake services
the tenant connected — the model's tool calls reach them with the tenant's own credentials, the
results flow back to the model, proposed changes wait for approval and run once."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from httpx import AsyncClient
from prometheus_client import REGISTRY

from opshub.config import Settings
from opshub.connectors.saleor import SaleorClient
from tests.conftest import TenantHandle
from tests.fakes.llm import FakeLLMServer
from tests.fakes.saleor import FakeSaleorServer
from tests.integration.runtime.conftest import store_openai_key, wait_for_status
from tests.integration.runtime.connected import (
    Connected,
    connect_amazon,
    connect_google,
    connect_linkedin,
    connect_meta,
    connect_saleor,
)

LAST_WEEK = {"start": "2026-11-16", "end": "2026-11-22"}


@pytest.fixture
def shop() -> Iterator[FakeSaleorServer]:
    with FakeSaleorServer(tokens=("shop-a-staff-token",)) as server:
        yield server


async def submit(client: AsyncClient, tenant: TenantHandle, crew: str, text: str) -> str:
    response = await client.post(
        "/v1/tasks", json={"crew": crew, "input": text}, headers=tenant.headers
    )
    assert response.status_code == 202, response.text
    task_id: str = response.json()["id"]
    return task_id


def tool_results_seen(fake_llm: FakeLLMServer, since: int) -> str:
    """Everything the model was shown back from tools after request number ``since``."""
    calls = fake_llm.requests_for("/v1/chat/completions")[since:]
    return json.dumps([m for c in calls for m in c.body["messages"] if m["role"] == "tool"])


def subscribers() -> float:
    """Event streams open now in this process (the hub serves the tests in-process)."""
    return REGISTRY.get_sample_value("opshub_sse_subscribers") or 0.0


async def until(check: Callable[[], bool], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def event_types(client: AsyncClient, tenant: TenantHandle, task_id: str) -> list[str]:
    async with client.stream(
        "GET", f"/v1/tasks/{task_id}/events", headers=tenant.headers
    ) as stream:
        text = "".join([chunk async for chunk in stream.aiter_text()])
    return [line[7:] for line in text.splitlines() if line.startswith("event: ")]


async def test_analytics_reads_every_channel_and_the_shop_with_the_tenants_keys_and_saves_a_report(
    hub_client: AsyncClient,
    tenant_a: TenantHandle,
    fake_llm: FakeLLMServer,
    connected: Connected,
    shop: FakeSaleorServer,
) -> None:
    await store_openai_key(hub_client, tenant_a)
    customer = await connect_google(hub_client, tenant_a, connected.google)
    connected.google.add_campaign(customer, "9001", "Search Brand")
    connected.google.add_daily_stats(
        customer, "9001", "2026-11-17", impressions=1000, clicks=50, cost_micros=123_450_000
    )
    account, meta_token = await connect_meta(hub_client, tenant_a, connected.meta)
    connected.meta.add_campaign(account, "7001", "Spring Sale", daily_budget=4000)
    connected.meta.add_daily_stats(
        account, "7001", "2026-11-18", impressions=800, clicks=40, spend="88.10",
        actions={"purchase": 3},
    )  # fmt: skip
    li_account = await connect_linkedin(hub_client, tenant_a, connected.linkedin)
    li_campaign = li_account + 1  # campaign ids are global in LinkedIn's fake
    connected.linkedin.add_campaign(li_account, li_campaign, "Decision makers")
    connected.linkedin.add_daily_stats(
        li_campaign, "2026-11-19", impressions=300, clicks=9, cost="45.00"
    )
    await connect_saleor(hub_client, tenant_a, shop, "shop-a-staff-token")
    before = len(fake_llm.requests_for("/v1/chat/completions"))
    fake_llm.script_openai(tool_calls=[("ad_performance", {**LAST_WEEK, "group_by": "channel"})])
    fake_llm.script_openai(tool_calls=[("shop_orders", {"limit": 5})])
    fake_llm.script_openai("Meta drove the drop.")
    fake_llm.script_openai(
        tool_calls=[
            (
                "save_report",
                {
                    "title": "ROAS last week",
                    "body": "1. Meta spend rose.",
                    "period_start": LAST_WEEK["start"],
                    "period_end": LAST_WEEK["end"],
                },
            )
        ]
    )
    fake_llm.script_openai("Report saved: ROAS last week.")

    task_id = await submit(hub_client, tenant_a, "analytics", "Why did ROAS drop last week?")
    task = await wait_for_status(hub_client, tenant_a, task_id)

    assert task["status"] == "succeeded", task
    assert task["result"] == "Report saved: ROAS last week."
    seen = tool_results_seen(fake_llm, before)
    for figure in ("123.45", "88.10", "45.00", "google_ads", "meta_ads", "linkedin_ads"):
        assert figure in seen
    assert "#" in seen or "number" in seen  # the shop's orders reached the model too
    insights = connected.meta.requests_for("insights")
    assert insights and insights[-1].params["access_token"] == meta_token
    reports = await hub_client.get("/v1/data/reports", headers=tenant_a.headers)
    [report] = [r for r in reports.json()["items"] if r["title"] == "ROAS last week"]
    assert report["period_start"] == LAST_WEEK["start"]
    assert report["author"] == "opshub analytics crew"


async def test_marketing_budget_change_within_policy_runs_once_and_one_above_waits_for_approval(
    hub_client: AsyncClient,
    tenant_a: TenantHandle,
    fake_llm: FakeLLMServer,
    connected: Connected,
) -> None:
    await store_openai_key(hub_client, tenant_a)
    account, _ = await connect_meta(hub_client, tenant_a, connected.meta)
    small = connected.meta.add_campaign(account, "7101", "Spring Sale", daily_budget=4000)
    large = connected.meta.add_campaign(account, "7102", "Brand", daily_budget=5000)
    policy = {"rules": [{"kind": "ads.budget_change", "auto_approve": True,
                         "max_amount": "50", "currency": "USD"}]}  # fmt: skip
    put = await hub_client.put("/v1/policies", json=policy, headers=tenant_a.headers)
    assert put.status_code == 200, put.text
    fake_llm.script_openai(tool_calls=[("ad_campaigns", {"channel": "meta_ads"})])
    fake_llm.script_openai(
        tool_calls=[
            ("propose_budget_change", {"channel": "meta_ads", "campaign_id": "7101",
                                       "daily_budget": "60", "reason": "Best ROAS."}),
            ("propose_budget_change", {"channel": "meta_ads", "campaign_id": "7102",
                                       "daily_budget": "150", "reason": "Scale brand."}),
        ]
    )  # fmt: skip
    fake_llm.script_openai("Plan: shift budget to Meta.")
    fake_llm.script_openai("Plan and three ad copy variants.")

    task_id = await submit(hub_client, tenant_a, "marketing", "Shift budget to what works.")
    task = await wait_for_status(hub_client, tenant_a, task_id, {"awaiting_approval", "failed"})

    assert task["status"] == "awaiting_approval", task
    # Open actions: the one waiting for a person, and maybe the approved one still being run.
    [waiting] = [a for a in task["pending_actions"] if a["status"] == "pending"]
    assert waiting["payload"]["campaign_id"] == "7102"
    assert "Waiting for your approval" in task["result"]
    # +20 USD/day is within the policy: approved without a person and carried out once.
    await until(lambda: small["daily_budget"] == "6000")
    assert large["daily_budget"] == "5000"  # +100 USD/day waits

    approved = await hub_client.post(
        f"/v1/actions/{waiting['id']}/approve", json={}, headers=tenant_a.headers
    )
    assert approved.status_code == 200, approved.text
    task = await wait_for_status(hub_client, tenant_a, task_id)

    assert task["status"] == "succeeded"
    assert large["daily_budget"] == "15000"
    writes = [r for r in connected.meta.requests if r.method == "POST"]
    assert [w.path.rsplit("/", 1)[1] for w in writes[-2:]] == ["7101", "7102"]
    assert "action.proposed" in await event_types(hub_client, tenant_a, task_id)


async def test_ecommerce_proposes_a_sourced_product_that_is_created_once_after_approval(
    hub_client: AsyncClient,
    tenant_a: TenantHandle,
    fake_llm: FakeLLMServer,
    connected: Connected,
    shop: FakeSaleorServer,
    runtime_settings: Settings,
) -> None:
    """The product's type requires a variant attribute: a proposal without it is refused
    naming it, the one with it waits for approval, and is then created with it and published
    once, after its variant."""
    await store_openai_key(hub_client, tenant_a)
    await connect_saleor(hub_client, tenant_a, shop, "shop-a-staff-token")
    await connect_amazon(hub_client, tenant_a, connected.amazon)
    connected.amazon.add_item("B0AUDIO001", "The Quiet Sea (audiobook)", price="12.99")
    async with httpx.AsyncClient() as http:
        saleor = SaleorClient(http=http, secret={"url": shop.url, "token": "shop-a-staff-token"})
        types = await saleor.list_product_types(search=None)
        audiobook = next(t for t in types if any(a["required"] for a in t["variant_attributes"]))
        category = (await saleor.list_categories(search=None))[0]["id"]
        channel = (await saleor.list_channels())[0]
        warehouse = channel["warehouses"][0]["id"]
    (required,) = [a for a in audiobook["variant_attributes"] if a["required"]]
    product = {
        "name": "The Quiet Sea", "slug": "the-quiet-sea",
        "description": "An audiobook of the sea.", "product_type_id": audiobook["id"],
        "category_id": category, "channel_ids": [channel["id"]], "sku": "QUIET-SEA-MP3",
        "price": "19.99", "warehouse_id": warehouse, "quantity": 20, "reason": "35% margin.",
    }  # fmt: skip
    with_format = {**product, "attributes": {required["name"]: required["choices"][0]}}
    before = len(fake_llm.requests_for("/v1/chat/completions"))
    fake_llm.script_openai(tool_calls=[("amazon_product_search", {"keywords": "quiet sea"})])
    fake_llm.script_openai("B0AUDIO001 The Quiet Sea at 12.99 USD.")
    fake_llm.script_openai(tool_calls=[("propose_product", product)])
    fake_llm.script_openai(tool_calls=[("propose_product", with_format)])
    fake_llm.script_openai("Proposed the audiobook.")
    fake_llm.script_openai("The audiobook waits for your approval.")
    thread = (await hub_client.post("/v1/threads", headers=tenant_a.headers)).json()["id"]

    posted = await hub_client.post(
        f"/v1/threads/{thread}/messages",
        json={"content": "Source an audiobook and list it.", "crew": "ecommerce"},
        headers=tenant_a.headers,
    )
    assert posted.status_code == 202, posted.text
    task_id = posted.json()["task"]["id"]
    task = await wait_for_status(hub_client, tenant_a, task_id, {"awaiting_approval", "failed"})

    assert task["status"] == "awaiting_approval", task
    seen = tool_results_seen(fake_llm, before)
    assert "12.99" in seen
    assert "it requires a value for 'Audiobook format' (DROPDOWN: one of MP3, FLAC, CD)" in seen
    assert shop.calls("productCreate") == 0  # nothing changes before a person approves
    messages = await hub_client.get(f"/v1/threads/{thread}/messages", headers=tenant_a.headers)
    agent_turn = messages.json()["items"][-1]
    assert "Waiting for your approval" in agent_turn["content"]
    assert "The Quiet Sea" in agent_turn["content"]

    [action] = task["pending_actions"]
    await hub_client.post(f"/v1/actions/{action['id']}/approve", json={}, headers=tenant_a.headers)
    task = await wait_for_status(hub_client, tenant_a, task_id)

    assert task["status"] == "succeeded"
    assert shop.calls("productCreate") == 1
    done = (await hub_client.get(f"/v1/actions/{action['id']}", headers=tenant_a.headers)).json()
    assert done["status"] == "executed"
    listings = [r.variables for r in shop.requests_for("ProductChannelListingUpdate")]
    published = [v for v in listings if v and v["input"]["updateChannels"][0]["isPublished"]]
    assert len(published) == 1  # published once, as the last write
    writes = [r for r in shop.requests if r.query and r.query.startswith("mutation")]
    assert writes[-1].variables == published[0]
    async with httpx.AsyncClient() as http:
        saleor = SaleorClient(http=http, secret={"url": shop.url, "token": "shop-a-staff-token"})
        variant = await saleor.variant_by_sku("QUIET-SEA-MP3")
    assert variant is not None
    assert variant["attributes"] == [{"attribute": "Audiobook format", "values": ["MP3"]}]


async def test_operations_digest_gathers_leads_orders_stock_connections_and_failed_runs(
    hub_client: AsyncClient,
    tenant_a: TenantHandle,
    fake_llm: FakeLLMServer,
    shop: FakeSaleorServer,
) -> None:
    await store_openai_key(hub_client, tenant_a)
    await connect_saleor(hub_client, tenant_a, shop, "shop-a-staff-token")
    await hub_client.post(
        "/v1/data/leads", json={"name": "Jane Follow-up"}, headers=tenant_a.headers
    )
    before = len(fake_llm.requests_for("/v1/chat/completions"))
    fake_llm.script_openai(
        tool_calls=[
            ("tenant_data", {"resource": "leads"}),
            ("shop_orders", {"status": "UNFULFILLED"}),
            ("shop_stock", {"threshold": 1000}),
            ("connection_health", {}),
            ("failed_runs", {}),
        ]
    )
    fake_llm.script_openai("Digest: follow up Jane; fulfil the open orders.")

    task_id = await submit(hub_client, tenant_a, "operations", "Today's digest, please.")
    task = await wait_for_status(hub_client, tenant_a, task_id)

    assert task["status"] == "succeeded", task
    seen = tool_results_seen(fake_llm, before)
    assert "Jane Follow-up" in seen
    assert "UNFULFILLED" in seen
    assert "sku" in seen  # low-stock variants
    assert '\\"provider\\":\\"saleor\\"' in seen and "openai" in seen
    assert "No failed runs." in seen


async def test_a_tenant_reaches_only_its_own_shop(
    hub_client: AsyncClient,
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
    fake_llm: FakeLLMServer,
) -> None:
    with (
        FakeSaleorServer(tokens=("shop-a-token-123",)) as shop_a,
        FakeSaleorServer(tokens=("shop-b-token-456",)) as shop_b,
    ):
        await store_openai_key(hub_client, tenant_a)
        await store_openai_key(hub_client, tenant_b)
        await connect_saleor(hub_client, tenant_a, shop_a, "shop-a-token-123")
        await connect_saleor(hub_client, tenant_b, shop_b, "shop-b-token-456")
        b_requests = len(shop_b.requests)
        fake_llm.script_openai("No sourcing needed.")
        fake_llm.script_openai("No catalogue change needed.")
        fake_llm.script_openai(tool_calls=[("shop_orders", {"limit": 3})])  # the merchandiser
        fake_llm.script_openai("Here are your orders.")

        task_id = await submit(hub_client, tenant_a, "ecommerce", "Show my latest orders.")
        task = await wait_for_status(hub_client, tenant_a, task_id)

        assert task["status"] == "succeeded", task
        order_reads = shop_a.requests_for("Orders")
        assert order_reads and {r.token for r in order_reads} == {"shop-a-token-123"}
        assert len(shop_b.requests) == b_requests


async def test_a_refused_shop_token_is_marked_invalid_and_the_agent_told_to_reconnect(
    hub_client: AsyncClient, tenant_a: TenantHandle, fake_llm: FakeLLMServer
) -> None:
    with FakeSaleorServer(tokens=("expired-token-789",)) as shop:
        await store_openai_key(hub_client, tenant_a)
        await connect_saleor(hub_client, tenant_a, shop, "expired-token-789")  # healthy now
        del shop.tokens["expired-token-789"]  # the token expires before the run
        shop.expired_tokens.add("expired-token-789")
        before = len(fake_llm.requests_for("/v1/chat/completions"))
        fake_llm.script_openai(tool_calls=[("shop_products", {"search": "tent"})])
        fake_llm.script_openai("The shop connection needs to be renewed.", times=3)

        task_id = await submit(hub_client, tenant_a, "ecommerce", "Do we sell tents?")
        task = await wait_for_status(hub_client, tenant_a, task_id)

    assert task["status"] == "succeeded", task
    seen = tool_results_seen(fake_llm, before)
    assert "marked invalid" in seen and "reconnect" in seen
    assert "expired-token-789" not in seen
    credentials = (await hub_client.get("/v1/credentials", headers=tenant_a.headers)).json()
    [saleor] = [c for c in credentials if c["provider"] == "saleor"]
    assert saleor["status"] == "invalid"


async def test_a_message_without_a_crew_is_routed_or_answered_with_a_question(
    hub_client: AsyncClient, tenant_a: TenantHandle, fake_llm: FakeLLMServer
) -> None:
    await store_openai_key(hub_client, tenant_a)
    thread = (await hub_client.post("/v1/threads", headers=tenant_a.headers)).json()["id"]
    fake_llm.script_openai('{"crew": null, "question": "Which campaign do you mean?", '
                           '"reason": "Several campaigns exist."}')  # fmt: skip

    first = await hub_client.post(
        f"/v1/threads/{thread}/messages", json={"content": "Pause it."}, headers=tenant_a.headers
    )
    asked = await wait_for_status(hub_client, tenant_a, first.json()["task"]["id"])

    assert asked["status"] == "succeeded", asked
    assert asked["result"] == "Which campaign do you mean?"
    assert asked["crew"] is None
    fake_llm.script_openai('{"crew": "marketing", "question": null, "reason": "A campaign."}')
    fake_llm.script_openai("Proposed nothing yet.", times=2)

    second = await hub_client.post(
        f"/v1/threads/{thread}/messages",
        json={"content": "The Spring Sale one on Meta."},
        headers=tenant_a.headers,
    )
    routed = await wait_for_status(hub_client, tenant_a, second.json()["task"]["id"])

    assert routed["status"] == "succeeded", routed
    assert routed["crew"] == "marketing"
    router_prompt = json.dumps(fake_llm.requests_for("/v1/chat/completions")[-3].body["messages"])
    assert "Which campaign do you mean?" in router_prompt  # the earlier exchange, resumed


async def propose_above_policy(
    client: AsyncClient, tenant: TenantHandle, fake_llm: FakeLLMServer, connected: Connected
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A marketing run proposing a pause no policy approves: (task id, action, campaign).

    The campaign's id is the test's own: Meta's ids are unique across accounts, and the fake,
    shared by the session, finds a campaign by id in whichever account holds it first."""
    await store_openai_key(client, tenant)
    account, _ = await connect_meta(client, tenant, connected.meta)
    campaign_id = str(uuid.uuid4().int)[:18]
    campaign = connected.meta.add_campaign(account, campaign_id, "Autumn", daily_budget=3000)
    fake_llm.script_openai(
        tool_calls=[("propose_campaign_status", {"channel": "meta_ads", "campaign_id": campaign_id,
                                                 "status": "PAUSED", "reason": "No sales."})]
    )  # fmt: skip
    fake_llm.script_openai("Proposed pausing Autumn.", times=2)
    task_id = await submit(client, tenant, "marketing", "Pause what does not sell.")
    task = await wait_for_status(client, tenant, task_id, {"awaiting_approval", "failed"})
    assert task["status"] == "awaiting_approval", task
    return task_id, task["pending_actions"][0], campaign


async def test_a_watcher_of_a_waiting_task_sees_it_finish_as_soon_as_its_action_is_approved(
    hub_client: AsyncClient, tenant_a: TenantHandle, fake_llm: FakeLLMServer, connected: Connected
) -> None:
    task_id, action, campaign = await propose_above_policy(
        hub_client, tenant_a, fake_llm, connected
    )

    async def watch() -> list[str]:
        return await event_types(hub_client, tenant_a, task_id)

    watching = subscribers()
    watcher = asyncio.create_task(watch())
    await until(lambda: subscribers() > watching)  # the watcher's stream is open
    started = time.monotonic()
    await hub_client.post(f"/v1/actions/{action['id']}/approve", json={}, headers=tenant_a.headers)
    types = await asyncio.wait_for(watcher, 10)

    assert time.monotonic() - started < 5  # live, not at the next 15 s keep-alive
    assert types[-3:] == ["action.approved", "action.executed", "task.succeeded"]
    assert "task.awaiting_approval" in types
    assert campaign["status"] == "PAUSED"


async def test_cancelling_a_waiting_task_withdraws_its_pending_actions(
    hub_client: AsyncClient, tenant_a: TenantHandle, fake_llm: FakeLLMServer, connected: Connected
) -> None:
    task_id, action, campaign = await propose_above_policy(
        hub_client, tenant_a, fake_llm, connected
    )

    cancelled = await hub_client.post(f"/v1/tasks/{task_id}/cancel", headers=tenant_a.headers)

    assert cancelled.status_code == 202, cancelled.text
    task = await wait_for_status(hub_client, tenant_a, task_id)
    assert task["status"] == "cancelled"
    assert task["pending_actions"] == []
    withdrawn = await hub_client.get(f"/v1/actions/{action['id']}", headers=tenant_a.headers)
    assert withdrawn.json()["status"] == "rejected"
    assert campaign["status"] == "ACTIVE"
