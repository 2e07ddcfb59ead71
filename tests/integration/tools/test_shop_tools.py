"""The shop tools against a fake Saleor, as an agent uses them: prices and stock per channel,
pages, and every way the shop can fail answered in one sentence without a secret in it."""

from __future__ import annotations

import json

import asyncpg
import pytest

from opshub.credentials import service as credentials_service
from opshub.credentials.models import Provider
from opshub.credentials.schemas import CredentialRead
from opshub.db.engine import tenant_transaction
from opshub.tools import connector
from opshub.tools.output import MAX_OUTPUT_CHARS
from opshub.tools.saleor import (
    ShopCatalogTool,
    ShopCustomersTool,
    ShopOrdersTool,
    ShopProductsTool,
    ShopStockTool,
    ShopVouchersTool,
)
from tests.conftest import TenantHandle
from tests.fakes.saleor import FakeSaleorServer
from tests.integration.tools.conftest import SHOP_TOKEN, Connect, ContextFor, data, use


def variant(answer: str, sku: str) -> dict[str, object]:
    [found] = [v for p in data(answer)["items"] for v in p["variants"] if v["sku"] == sku]
    return found


async def stored_saleor(app_pool: asyncpg.Pool, tenant: TenantHandle) -> CredentialRead:
    """The shop credential as the tenant sees it (GET /v1/credentials)."""
    async with tenant_transaction(app_pool, tenant.id) as conn:
        return await credentials_service.get_credential(
            conn, tenant_id=tenant.id, provider=Provider.saleor
        )


async def test_prices_and_stock_are_those_of_the_channel_asked_for(
    tenant_a: TenantHandle, shop: FakeSaleorServer, connect: Connect, context_for: ContextFor
) -> None:
    await connect.saleor(tenant_a, shop)
    products = ShopProductsTool(context=context_for(tenant_a))

    usd = await use(products, search="Monospace")
    pln = await use(products, search="Monospace", channel="channel-pln")

    # The US channel sells from both warehouses, the Polish one from Europe only.
    assert variant(usd, "MONO-S")["price"] == {"amount": 20.0, "currency": "USD"}
    assert variant(usd, "MONO-S")["quantity_available"] == 17
    assert variant(pln, "MONO-S")["price"] == {"amount": 80.0, "currency": "PLN"}
    assert variant(pln, "MONO-S")["quantity_available"] == 5
    stock = data(await use(ShopStockTool(context=context_for(tenant_a)), threshold=3))
    assert [(v["sku"], v["available"]) for v in stock] == [("HOOD-L", 0), ("MONO-M", 3)]


async def test_the_next_page_is_reached_through_the_cursor_the_first_page_gives(
    tenant_a: TenantHandle, shop: FakeSaleorServer, connect: Connect, context_for: ContextFor
) -> None:
    await connect.saleor(tenant_a, shop)
    products = ShopProductsTool(context=context_for(tenant_a))

    first = data(await use(products, limit=2))
    second = data(await use(products, limit=2, cursor=first["next_cursor"]))
    third = data(await use(products, limit=2, cursor=second["next_cursor"]))

    names = [p["name"] for page in (first, second, third) for p in page["items"]]
    assert len(names) == len(set(names)) == first["total_count"] == 5
    assert third["next_cursor"] is None


async def test_a_shop_that_is_not_connected_is_named_with_the_call_that_connects_it(
    tenant_a: TenantHandle, context_for: ContextFor
) -> None:
    answer = await use(ShopOrdersTool(context=context_for(tenant_a)), limit=5)

    assert answer == (
        "the Saleor shop is not connected for this business: ask the user to add the saleor "
        "credential (PUT /v1/credentials/saleor)."
    )


async def test_an_expired_token_is_marked_invalid_and_the_agent_told_to_reconnect(
    tenant_a: TenantHandle,
    shop: FakeSaleorServer,
    connect: Connect,
    context_for: ContextFor,
    app_pool: asyncpg.Pool,
) -> None:
    await connect.saleor(tenant_a, shop)
    shop.expired_tokens.add(SHOP_TOKEN)

    answer = await use(ShopProductsTool(context=context_for(tenant_a)), search="tee")

    assert "marked invalid" in answer and "reconnect" in answer
    assert "Signature has expired" in answer
    assert (await stored_saleor(app_pool, tenant_a)).status == "invalid"


async def test_a_rate_limit_with_retry_after_is_waited_out_and_the_answer_arrives(
    tenant_a: TenantHandle, shop: FakeSaleorServer, connect: Connect, context_for: ContextFor
) -> None:
    await connect.saleor(tenant_a, shop)
    shop.fail_next(429, retry_after=1)

    answer = await use(ShopCustomersTool(context=context_for(tenant_a)), search="alice")

    assert [c["email"] for c in data(answer)["items"]] == ["alice@example.com"]
    refused, served = shop.requests_for("Customers")
    assert served.at - refused.at >= 0.9


async def test_a_rate_limit_too_long_to_wait_out_tells_the_agent_when_to_come_back(
    tenant_a: TenantHandle, shop: FakeSaleorServer, connect: Connect, context_for: ContextFor
) -> None:
    await connect.saleor(tenant_a, shop)
    shop.fail_next(429, retry_after=120)

    answer = await use(ShopVouchersTool(context=context_for(tenant_a)))

    assert answer == "the Saleor shop is rate limiting requests: try again in about 120 s."
    assert len(shop.requests_for("Vouchers")) == 1


async def test_a_storm_of_server_errors_ends_in_one_short_sentence(
    tenant_a: TenantHandle, shop: FakeSaleorServer, connect: Connect, context_for: ContextFor
) -> None:
    await connect.saleor(tenant_a, shop)
    shop.fail_next(503, times=10)

    answer = await use(ShopOrdersTool(context=context_for(tenant_a)), status="UNFULFILLED")

    assert answer == "the Saleor shop: Saleor answered HTTP 503"
    assert len(shop.requests_for("Orders")) == 3  # the read was retried, then given up


async def test_a_shop_that_does_not_answer_in_time_is_answered_in_one_sentence(
    tenant_a: TenantHandle,
    shop: FakeSaleorServer,
    connect: Connect,
    context_for: ContextFor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await connect.saleor(tenant_a, shop)
    shop.delay_operation("channels", 3.0)
    monkeypatch.setattr(connector, "CONNECTOR_TIMEOUT_SECONDS", 0.5)

    answer = await use(ShopCatalogTool(context=context_for(tenant_a)), what="channels")

    assert answer == "the Saleor shop did not answer within 0.5 s: try again later."


async def test_a_big_page_is_trimmed_by_whole_products_with_a_note_saying_how_to_ask_again(
    tenant_a: TenantHandle, shop: FakeSaleorServer, connect: Connect, context_for: ContextFor
) -> None:
    await connect.saleor(tenant_a, shop)
    seeded = shop.store.products[0]
    for n in range(40):
        shop.store.products.append(
            {
                **seeded,
                "pk": 100 + n,
                "slug": f"tee-{n}",
                "name": f"Tee {n}",
                "variants": [
                    {**v, "pk": 1000 + 10 * n + i, "sku": f"TEE-{n}-{v['name']}"}
                    for i, v in enumerate(seeded["variants"])
                ],
            }
        )

    answer = await use(ShopProductsTool(context=context_for(tenant_a)), limit=50)

    page = json.loads(answer)  # still whole JSON the model can read
    assert len(answer) <= MAX_OUTPUT_CHARS
    kept = len(page["items"])
    assert 1 <= kept < 45
    assert page["next_cursor"] is None  # paging on would skip the products left out
    assert page["note"] == (
        f"{45 - kept} more items left out to fit; "
        f"ask again with limit={kept} and page on from there"
    )


async def test_no_answer_of_a_shop_tool_holds_the_token(
    tenant_a: TenantHandle,
    shop: FakeSaleorServer,
    connect: Connect,
    context_for: ContextFor,
    app_pool: asyncpg.Pool,
) -> None:
    await connect.saleor(tenant_a, shop)
    context = context_for(tenant_a)
    calls = [
        (ShopProductsTool(context=context), {"search": "tee"}),
        (ShopCatalogTool(context=context), {"what": "warehouses"}),
        (ShopOrdersTool(context=context), {}),
        (ShopCustomersTool(context=context), {}),
        (ShopVouchersTool(context=context), {"channel": "default-channel"}),
        (ShopStockTool(context=context), {"threshold": 100}),
    ]
    answers = [await use(tool, **args) for tool, args in calls]
    # A gateway that echoes the token in its error, first as a bad request, then as a refusal.
    echo = {"errors": [{"message": f"Bearer {SHOP_TOKEN} is not allowed here"}]}
    shop.fail_next(400, body=echo)
    answers.append(await use(calls[0][0], search="tee"))
    shop.fail_next(400, body={"errors": [{"message": f"invalid token {SHOP_TOKEN}"}]})
    answers.append(await use(calls[0][0], search="tee"))

    assert answers[-2] == (
        "the Saleor shop: Saleor rejected the request: Bearer [redacted] is not allowed here"
    )
    assert "marked invalid" in answers[-1] and "[redacted]" in answers[-1]
    assert all(SHOP_TOKEN not in answer for answer in answers)
    assert (await stored_saleor(app_pool, tenant_a)).status_detail == (
        "Saleor refused the token: invalid token [redacted]"
    )
    assert {r.token for r in shop.requests} == {SHOP_TOKEN}  # it was sent, never shown


async def test_a_tenants_shop_tools_reach_only_its_own_shop(
    tenant_a: TenantHandle, tenant_b: TenantHandle, connect: Connect, context_for: ContextFor
) -> None:
    with (
        FakeSaleorServer(tokens=("shop-a-token-123",)) as shop_a,
        FakeSaleorServer(tokens=("shop-b-token-456",)) as shop_b,
    ):
        await connect.saleor(tenant_a, shop_a, "shop-a-token-123")
        await connect.saleor(tenant_b, shop_b, "shop-b-token-456")
        shop_b.store.orders.clear()  # B's shop has no orders: A's must not show any of B's

        answer = await use(ShopOrdersTool(context=context_for(tenant_a)), limit=3)

    assert len(data(answer)["items"]) == 3
    assert {r.token for r in shop_a.requests} == {"shop-a-token-123"}
    assert shop_b.requests == []


async def test_a_field_the_token_may_not_read_is_named_with_the_permission_that_shows_it(
    tenant_a: TenantHandle, connect: Connect, context_for: ContextFor
) -> None:
    with FakeSaleorServer(tokens={"users-only-token": {"MANAGE_USERS"}}) as users_only:
        await connect.saleor(tenant_a, users_only, token="users-only-token")
        answer = data(await use(ShopCustomersTool(context=context_for(tenant_a))))

    assert [c["email"] for c in answer["items"]][:2] == ["alice@example.com", "bob@example.com"]
    assert answer["withheld"].startswith(
        "customers.orders needs MANAGE_ORDERS: the Saleor token lacks that permission"
    )


async def test_a_wrong_channel_is_answered_with_the_shops_channels(
    tenant_a: TenantHandle, shop: FakeSaleorServer, connect: Connect, context_for: ContextFor
) -> None:
    await connect.saleor(tenant_a, shop)
    answer = await use(ShopProductsTool(context=context_for(tenant_a)), channel="usd")
    assert answer == (
        "the Saleor shop: no channel 'usd': the shop's channels are 'default-channel' (USD), "
        "'channel-pln' (PLN)"
    )
