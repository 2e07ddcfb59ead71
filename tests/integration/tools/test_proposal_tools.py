"""The proposal tools: each records one action for a person (or the business's policy) to
approve, with the figures the policy judges read from the platform, never from the model."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import asyncpg

from opshub.actions import policies
from opshub.actions.schemas import PoliciesPut, PolicyRule
from opshub.db.engine import tenant_transaction
from opshub.tools.actions import (
    ProposeBudgetChangeTool,
    ProposeCampaignStatusTool,
    ProposeOrderNoteTool,
    ProposeProductTool,
    ProposeStockUpdateTool,
)
from tests.conftest import TenantHandle
from tests.fakes.saleor import FakeSaleorServer, global_id
from tests.integration.runtime.connected import Connected
from tests.integration.tools.conftest import Connect, ContextFor, make_task, use, use_directly


async def actions_of(owner_pool: asyncpg.Pool, task_id: uuid.UUID) -> list[asyncpg.Record]:
    async with owner_pool.acquire() as conn:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT * FROM actions WHERE task_id = $1 ORDER BY created_at", task_id
        )
    return rows


async def allow_budget_changes_up_to(
    app_pool: asyncpg.Pool, tenant: TenantHandle, amount: str, currency: str
) -> None:
    rule = PolicyRule(
        kind="ads.budget_change", auto_approve=True, max_amount=Decimal(amount), currency=currency
    )
    async with tenant_transaction(app_pool, tenant.id) as conn:
        await policies.put_policies(conn, tenant_id=tenant.id, body=PoliciesPut(rules=[rule]))


AUDIOBOOK = global_id("ProductType", 3)


def product(**changes: Any) -> dict[str, Any]:
    """A product for the fake shop's seeded catalogue."""
    return {
        "name": "White Canvas Sneaker", "slug": "white-canvas-sneaker",
        "description": "A clean white canvas sneaker.",
        "product_type_id": global_id("ProductType", 2), "category_id": global_id("Category", 3),
        "channel_ids": [global_id("Channel", 1)], "sku": "SNEAK-WHITE-42", "price": "34.99",
        "warehouse_id": global_id("Warehouse", 1), "quantity": 20, "reason": "40% margin.",
        **changes,
    }  # fmt: skip


async def test_a_budget_change_takes_the_current_budget_and_currency_from_the_platform(
    tenant_a: TenantHandle,
    connect: Connect,
    platforms: Connected,
    context_for: ContextFor,
    owner_pool: asyncpg.Pool,
) -> None:
    account, _ = await connect.meta(tenant_a, currency="EUR")
    platforms.meta.add_campaign(account, "7101", "Spring Sale", daily_budget=4000)
    task_id = await make_task(owner_pool, tenant_a)
    tool = ProposeBudgetChangeTool(context=context_for(tenant_a, task_id))

    # The model's own idea of the budget and its currency is not asked for, and not used.
    answer = await use(
        tool,
        channel="meta_ads",
        campaign_id="7101",
        daily_budget="60",
        reason="Best ROAS.",
        currency="USD",
        previous_daily_budget="59",
    )

    [action] = await actions_of(owner_pool, task_id)
    summary = "Change the daily budget of Meta campaign 'Spring Sale' (7101) from 40 to 60 EUR"
    assert answer == (
        f"Proposed action {action['id']}: {summary}: Best ROAS. It awaits the business's approval."
    )
    assert action["status"] == "pending"
    assert action["summary"] == f"{summary}: Best ROAS."
    assert action["payload"] == {
        "channel": "meta_ads", "campaign_id": "7101", "budget_id": None, "daily_budget": "60",
        "previous_daily_budget": "40", "currency": "EUR",
    }  # fmt: skip
    assert action["estimated_impact"] == {"amount": "20", "currency": "EUR", "per": "day"}
    assert platforms.meta.writes == []  # nothing changes before it is approved


async def test_a_budget_change_within_the_policy_is_approved_by_it(
    tenant_a: TenantHandle,
    connect: Connect,
    platforms: Connected,
    context_for: ContextFor,
    owner_pool: asyncpg.Pool,
    app_pool: asyncpg.Pool,
) -> None:
    account, _ = await connect.meta(tenant_a, currency="EUR")
    platforms.meta.add_campaign(account, "7101", "Spring Sale", daily_budget=4000)
    platforms.meta.add_campaign(account, "7102", "Brand", daily_budget=5000)
    await allow_budget_changes_up_to(app_pool, tenant_a, "50", "EUR")
    task_id = await make_task(owner_pool, tenant_a)
    tool = ProposeBudgetChangeTool(context=context_for(tenant_a, task_id))

    within = await use(
        tool, channel="meta_ads", campaign_id="7101", daily_budget="60", reason="Best ROAS."
    )
    above = await use(
        tool, channel="meta_ads", campaign_id="7102", daily_budget="150", reason="Scale brand."
    )

    assert within.endswith("The business's policy approved it; it will be carried out shortly.")
    assert above.endswith("It awaits the business's approval.")  # +100 EUR a day is over 50
    actions = await actions_of(owner_pool, task_id)
    assert {a["payload"]["campaign_id"]: a["decided_by"] for a in actions} == {
        "7101": "policy",
        "7102": None,
    }


async def test_a_campaign_without_its_own_budget_is_proposed_in_the_accounts_currency(
    tenant_a: TenantHandle,
    connect: Connect,
    platforms: Connected,
    context_for: ContextFor,
    owner_pool: asyncpg.Pool,
    app_pool: asyncpg.Pool,
) -> None:
    account = await connect.linkedin(tenant_a, currency="EUR")
    platforms.linkedin.add_campaign(account, account + 1, "Lifetime budget", daily_budget=None)
    await allow_budget_changes_up_to(app_pool, tenant_a, "50", "USD")
    task_id = await make_task(owner_pool, tenant_a)
    tool = ProposeBudgetChangeTool(context=context_for(tenant_a, task_id))

    answer = await use(
        tool,
        channel="linkedin_ads",
        campaign_id=str(account + 1),
        daily_budget="40",
        reason="Keep it running.",
    )

    # Not guessed as USD: a USD policy would have approved what the account bills in EUR.
    [action] = await actions_of(owner_pool, task_id)
    assert action["payload"]["currency"] == "EUR"
    assert action["status"] == "pending"
    assert "awaits the business's approval" in answer


async def test_an_unknown_campaign_is_answered_clearly_and_nothing_is_recorded(
    tenant_a: TenantHandle,
    connect: Connect,
    platforms: Connected,
    context_for: ContextFor,
    owner_pool: asyncpg.Pool,
) -> None:
    account, _ = await connect.meta(tenant_a)
    platforms.meta.add_campaign(account, "7101", "Spring Sale", daily_budget=4000)
    task_id = await make_task(owner_pool, tenant_a)
    context = context_for(tenant_a, task_id)

    budget = await use(
        ProposeBudgetChangeTool(context=context),
        channel="meta_ads",
        campaign_id="7999",
        daily_budget="60",
        reason="Best ROAS.",
    )
    pause = await use(
        ProposeCampaignStatusTool(context=context),
        channel="meta_ads",
        campaign_id="7999",
        status="PAUSED",
        reason="No sales.",
    )

    assert budget == pause == "There is no campaign 7999 on meta_ads."
    assert await actions_of(owner_pool, task_id) == []


async def test_an_invalid_product_is_answered_with_what_is_wrong_and_nothing_is_recorded(
    tenant_a: TenantHandle, context_for: ContextFor, owner_pool: asyncpg.Pool
) -> None:
    task_id = await make_task(owner_pool, tenant_a)
    tool = ProposeProductTool(context=context_for(tenant_a, task_id))

    via_crewai = await use(tool, **product(slug="White Sneaker!"))
    directly = await use_directly(tool, **product(slug="White Sneaker!", price="-1"))

    assert via_crewai == (
        "The proposal is not valid: slug: String should match pattern '^[a-z0-9][a-z0-9-]*$'."
    )
    assert directly == (
        "The proposal is not valid: slug: String should match pattern '^[a-z0-9][a-z0-9-]*$'; "
        "price: Input should be greater than 0."
    )
    assert await actions_of(owner_pool, task_id) == []


async def test_a_product_missing_a_required_variant_attribute_is_refused_naming_it(
    tenant_a: TenantHandle,
    connect: Connect,
    shop: FakeSaleorServer,
    context_for: ContextFor,
    owner_pool: asyncpg.Pool,
) -> None:
    await connect.saleor(tenant_a, shop)
    task_id = await make_task(owner_pool, tenant_a)
    tool = ProposeProductTool(context=context_for(tenant_a, task_id))

    missing = await use(tool, **product(product_type_id=AUDIOBOOK))
    wrong = await use(tool, **product(product_type_id=AUDIOBOOK, attributes={"Format": "MP3"}))
    unoffered = await use(
        tool, **product(product_type_id=AUDIOBOOK, attributes={"Audiobook format": "vinyl"})
    )

    assert missing == (
        "the Saleor shop: product type 'Audiobook': it requires a value for 'Audiobook format' "
        "(DROPDOWN: one of MP3, FLAC, CD). Give them in `attributes` as {attribute name: value}"
    )
    assert "'Format' is not a variant attribute of it (it has 'Audiobook format', 'Narrator')" in (
        wrong
    )
    assert "vinyl is not a value of 'Audiobook format'" in unoffered
    assert await actions_of(owner_pool, task_id) == []
    assert shop.calls("productCreate") == 0


async def test_a_product_with_its_attributes_is_proposed_with_the_shops_own_values(
    tenant_a: TenantHandle,
    connect: Connect,
    shop: FakeSaleorServer,
    context_for: ContextFor,
    owner_pool: asyncpg.Pool,
) -> None:
    await connect.saleor(tenant_a, shop)
    task_id = await make_task(owner_pool, tenant_a)
    tool = ProposeProductTool(context=context_for(tenant_a, task_id))
    attributes = {"audiobook-format": "mp3", "Narrator": "Ada Reed"}

    answer = await use(tool, **product(product_type_id=AUDIOBOOK, attributes=attributes))

    [action] = await actions_of(owner_pool, task_id)
    assert "(SKU SNEAK-WHITE-42, Audiobook format MP3, Narrator Ada Reed)" in answer
    assert action["payload"]["variant_attributes"] == [
        {"id": global_id("Attribute", 2), "name": "Audiobook format", "input_type": "DROPDOWN",
         "values": ["MP3"]},
        {"id": global_id("Attribute", 3), "name": "Narrator", "input_type": "PLAIN_TEXT",
         "values": ["Ada Reed"]},
    ]  # fmt: skip


async def test_proposing_the_same_thing_twice_in_a_task_records_one_action(
    tenant_a: TenantHandle,
    connect: Connect,
    shop: FakeSaleorServer,
    context_for: ContextFor,
    owner_pool: asyncpg.Pool,
) -> None:
    await connect.saleor(tenant_a, shop)
    task_id = await make_task(owner_pool, tenant_a, input="List a white sneaker.")
    tool = ProposeProductTool(context=context_for(tenant_a, task_id))

    first = await use(tool, **product())
    again = await use(tool, **product(reason="Still a 40% margin."))

    [action] = await actions_of(owner_pool, task_id)
    assert first.startswith(f"Proposed action {action['id']}: Create product")
    assert again.startswith(f"Proposed action {action['id']}: ")
    assert action["payload"]["slug"] == "white-canvas-sneaker"


async def test_a_shop_proposal_with_an_id_of_the_wrong_kind_is_refused_before_it_is_recorded(
    tenant_a: TenantHandle, context_for: ContextFor, owner_pool: asyncpg.Pool
) -> None:
    task_id = await make_task(owner_pool, tenant_a)
    context = context_for(tenant_a, task_id)

    stock = await use(
        ProposeStockUpdateTool(context=context),
        variant_id="MONO-S",
        warehouse_id=global_id("Warehouse", 1),
        quantity=5,
        reason="Restocked.",
    )
    note = await use(
        ProposeOrderNoteTool(context=context),
        order_id=global_id("Product", 1),
        message="Gift wrap.",
        reason="Asked by phone.",
    )

    assert stock == (
        "The proposal is not valid: 'MONO-S' is not a Saleor ProductVariant id: take it from "
        "the shop tools."
    )
    assert note.startswith("The proposal is not valid: 'UHJvZHVjdDox' is not a Saleor Order id")
    assert await actions_of(owner_pool, task_id) == []
