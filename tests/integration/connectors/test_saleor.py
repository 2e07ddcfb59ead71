"""The Saleor client against the fake Saleor 3.20 over real HTTP: what the agents read, and how
each failure reaches them."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from opshub.connectors.errors import (
    ConnectorAuthError,
    ConnectorRateLimitedError,
    ConnectorRequestError,
    ConnectorResponseError,
    ConnectorUnavailableError,
)
from opshub.connectors.http import RetryPolicy
from opshub.connectors.saleor import SaleorClient
from tests.fakes.saleor import (
    ALL_PERMISSIONS,
    INTERNAL_SERVER_ERROR,
    FakeSaleorServer,
    global_id,
)
from tests.integration.connectors.shared import FAST

STAFF = "staff-token-a1b2c3"
CATALOGUE_ONLY = "catalogue-token-d4e5f6"
CUSTOMERS_ONLY = "customers-token-j1k2l3"
EXPIRED = "expired-token-g7h8i9"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeSaleorServer]:
    tokens = {
        STAFF: ALL_PERMISSIONS,
        CATALOGUE_ONLY: {"MANAGE_PRODUCTS"},
        CUSTOMERS_ONLY: {"MANAGE_USERS"},
    }
    with FakeSaleorServer(tokens=tokens, expired_tokens=[EXPIRED]) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(fake: FakeSaleorServer) -> None:
    fake.reset()


def shop(
    http: httpx.AsyncClient, fake: FakeSaleorServer, token: str = STAFF, policy: RetryPolicy = FAST
) -> SaleorClient:
    return SaleorClient(http=http, secret={"url": fake.url, "token": token}, policy=policy)


async def test_products_carry_the_channels_prices_and_stock(
    http: httpx.AsyncClient, fake: FakeSaleorServer
) -> None:
    usd = await shop(http, fake).search_products(search="tee", channel="default-channel")
    tee = next(p for p in usd["items"] if p["slug"] == "monospace-tee")
    assert tee["category"] == "T-shirts"
    assert tee["price_range"]["start"] == {"amount": 20.0, "currency": "USD"}
    small = next(v for v in tee["variants"] if v["sku"] == "MONO-S")
    assert small["quantity_available"] == 17
    assert {s["warehouse"]: s["quantity"] for s in small["stocks"]} == {"Americas": 12, "Europe": 5}

    pln = await shop(http, fake).search_products(search="tee", channel="channel-pln")
    assert [p["slug"] for p in pln["items"]] == ["monospace-tee"]  # Dash Force: not sold in PLN
    tee = pln["items"][0]
    assert tee["price_range"]["start"] == {"amount": 80.0, "currency": "PLN"}
    small = next(v for v in tee["variants"] if v["sku"] == "MONO-S")
    # Only the warehouse serving the PLN channel counts there.
    assert small["quantity_available"] == 5
    assert [s["warehouse"] for s in small["stocks"]] == ["Europe"]


async def test_products_of_a_category_by_its_slug(
    http: httpx.AsyncClient, fake: FakeSaleorServer
) -> None:
    page = await shop(http, fake).search_products(
        search=None, channel="default-channel", category="t-shirts"
    )
    assert sorted(p["name"] for p in page["items"]) == ["Dash Force Tee", "Monospace Tee"]

    with pytest.raises(ConnectorRequestError, match="no category with slug 'shoes'"):
        await shop(http, fake).search_products(
            search=None, channel="default-channel", category="shoes"
        )


async def test_pages_follow_the_cursor_to_the_end(
    http: httpx.AsyncClient, fake: FakeSaleorServer
) -> None:
    client, names, cursor, pages = shop(http, fake), [], None, 0
    while True:
        page = await client.search_products(
            search=None, channel="default-channel", first=2, after=cursor
        )
        pages += 1
        names += [p["name"] for p in page["items"]]
        assert page["total_count"] == 5
        if (cursor := page["next_cursor"]) is None:
            break
    assert pages == 3
    assert len(names) == len(set(names)) == 5


async def test_one_product_with_its_description_as_text(
    http: httpx.AsyncClient, fake: FakeSaleorServer
) -> None:
    client = shop(http, fake)
    product = await client.get_product(slug="blue-hoodie", channel="channel-pln")
    assert product is not None
    assert product["description"] == "Blue Hoodie."
    assert product["price_range"] == {
        "start": {"amount": 180.0, "currency": "PLN"},
        "stop": {"amount": 188.0, "currency": "PLN"},
    }
    assert {c["channel"] for c in product["channels"]} == {"default-channel", "channel-pln"}
    by_id = await client.get_product(id=product["id"], channel="channel-pln")
    assert by_id == product
    assert await client.get_product(slug="dash-force-tee", channel="channel-pln") is None


async def test_the_catalogue_structure_with_ids(
    http: httpx.AsyncClient, fake: FakeSaleorServer
) -> None:
    client = shop(http, fake)
    channels = {c["slug"]: c for c in await client.list_channels()}
    assert channels["channel-pln"]["currency"] == "PLN"
    assert [w["name"] for w in channels["channel-pln"]["warehouses"]] == ["Europe"]

    (tshirts,) = await client.list_categories(search="shirt")
    assert (tshirts["slug"], tshirts["parent"], tshirts["level"]) == ("t-shirts", "Apparel", 1)
    apparel = (await client.list_categories(search="apparel"))[0]
    assert apparel["children"] == ["T-shirts"]

    warehouses = await client.list_warehouses()
    assert [(w["name"], w["city"], w["country"]) for w in warehouses] == [
        ("Americas", "NEW YORK", "US"),
        ("Europe", "WARSZAWA", "PL"),
    ]
    types = await client.list_product_types(search="simple")
    assert [(t["name"], t["has_variants"]) for t in types] == [("Simple", False)]


async def test_orders_list_and_detail(http: httpx.AsyncClient, fake: FakeSaleorServer) -> None:
    client = shop(http, fake)
    page = await client.list_orders(status="unfulfilled")
    (order,) = page["items"]
    assert order["number"] == "1"
    assert order["total"] == {"amount": 70.0, "currency": "USD"}
    assert order["customer_email"] == "alice@example.com"

    by_email = await client.list_orders(search="alice@example.com")
    assert [o["number"] for o in by_email["items"]] == ["3", "1"]

    detail = await client.get_order(id=order["id"])
    assert detail is not None
    assert [(line["sku"], line["quantity"], line["unit_price"]) for line in detail["lines"]] == [
        ("MONO-S", 2, 20.0),
        ("BELT-1", 1, 30.0),
    ]
    assert detail["shipping_address"]["city"] == "BOSTON"
    assert [e["type"] for e in detail["events"]] == ["PLACED"]

    with pytest.raises(ConnectorRequestError, match="unknown order status 'lost'"):
        await client.list_orders(status="lost")


async def test_the_digest_reads_waiting_orders_and_low_stock(
    http: httpx.AsyncClient, fake: FakeSaleorServer
) -> None:
    client = shop(http, fake)
    waiting = await client.unfulfilled_orders(channel="default-channel")
    assert [(o["number"], o["to_fulfill_per_line"]) for o in waiting] == [("1", [2, 1])]

    usd = await client.low_stock(threshold=5, channel="default-channel")
    assert [(v["sku"], v["available"]) for v in usd] == [("HOOD-L", 0), ("MONO-M", 3)]
    pln = await client.low_stock(threshold=5, channel="channel-pln")
    assert [(v["sku"], v["available"]) for v in pln] == [
        ("HOOD-L", 0),
        ("MONO-M", 3),
        ("MONO-S", 5),
    ]
    assert pln[2]["product"] == "Monospace Tee"


async def test_customers_and_vouchers(http: httpx.AsyncClient, fake: FakeSaleorServer) -> None:
    client = shop(http, fake)
    (bob,) = (await client.list_customers(search="bob"))["items"]
    assert (bob["email"], bob["orders"], bob["city"], bob["country"]) == (
        "bob@example.com",
        1,
        "KRAKÓW",
        "PL",
    )
    vouchers = await client.list_vouchers(search=None, channel="default-channel")
    by_code = {v["code"]: v for v in vouchers["items"]}
    assert by_code["WELCOME10"]["discount_value"] == 10.0
    assert by_code["FIVEOFF"]["discount_value_type"] == "FIXED"
    assert by_code["FIVEOFF"]["channels"][0]["currency"] == "USD"


async def test_a_missing_permission_is_named(
    http: httpx.AsyncClient, fake: FakeSaleorServer
) -> None:
    with pytest.raises(ConnectorRequestError) as caught:
        await shop(http, fake, token=CATALOGUE_ONLY).list_orders()
    assert "MANAGE_ORDERS" in caught.value.message
    assert CATALOGUE_ONLY not in str(caught.value)


async def test_a_write_without_its_permission_changes_nothing(
    http: httpx.AsyncClient, fake: FakeSaleorServer
) -> None:
    with pytest.raises(ConnectorRequestError, match="MANAGE_DISCOUNTS"):
        await shop(http, fake, token=CATALOGUE_ONLY).create_voucher(
            name="Sneaky", code="SNEAKY50", discount_value_type="PERCENTAGE"
        )
    assert [v["code"] for v in fake.store.vouchers] == ["WELCOME10", "FIVEOFF"]


async def test_a_refused_token_is_an_auth_error(
    http: httpx.AsyncClient, fake: FakeSaleorServer
) -> None:
    with pytest.raises(ConnectorAuthError, match="Signature has expired") as caught:
        await shop(http, fake, token=EXPIRED).list_channels()
    assert EXPIRED not in caught.value.message

    fake.fail_next(401, body={"detail": "Unauthorized"})
    with pytest.raises(ConnectorAuthError):
        await shop(http, fake).list_channels()
    assert len(fake.requests) == 2  # never retried


async def test_rate_limit_waits_as_told_then_answers(
    http: httpx.AsyncClient, fake: FakeSaleorServer
) -> None:
    fake.fail_next(429, retry_after=0.4)
    channels = await shop(http, fake).list_channels()
    assert len(channels) == 2
    first, second = fake.requests
    assert second.at - first.at >= 0.4

    fake.fail_next(429, retry_after=60)  # longer than the run may wait
    with pytest.raises(ConnectorRateLimitedError) as caught:
        await shop(http, fake).list_channels()
    assert caught.value.retry_after == 60


async def test_an_answer_that_is_not_graphql_is_a_response_error(
    http: httpx.AsyncClient, fake: FakeSaleorServer
) -> None:
    fake.fail_next(200, body="<html>Welcome to our shop</html>")
    with pytest.raises(ConnectorResponseError, match="GraphQL endpoint"):
        await shop(http, fake).list_channels()
    fake.fail_next(200, body={"result": "ok"})
    with pytest.raises(ConnectorResponseError, match="no data"):
        await shop(http, fake).list_channels()


async def test_a_write_is_sent_once_even_when_its_answer_is_lost(
    http: httpx.AsyncClient, fake: FakeSaleorServer
) -> None:
    variant_id = global_id("ProductVariant", 1)
    fake.fail_next(502)
    with pytest.raises(ConnectorUnavailableError):
        await shop(http, fake).update_stock(
            variant_id=variant_id, warehouse_id=global_id("Warehouse", 1), quantity=4
        )
    assert len(fake.requests_for("ProductVariantStocksUpdate")) == 1


async def test_a_refused_write_names_the_field(
    http: httpx.AsyncClient, fake: FakeSaleorServer
) -> None:
    with pytest.raises(ConnectorRequestError) as caught:
        await shop(http, fake).create_product(
            product_type_id=global_id("ProductType", 1),
            category_id=global_id("Category", 2),
            name="Another Tee",
            slug="monospace-tee",
        )
    assert "slug: Product with this Slug already exists. (UNIQUE)" in caught.value.message
    assert fake.calls("productCreate") == 1
    assert len(fake.store.products) == 5


async def test_a_tenant_sees_only_its_own_shop(http: httpx.AsyncClient) -> None:
    with (
        FakeSaleorServer(tokens=["tenant-a-token"]) as shop_a,
        FakeSaleorServer(tokens=["tenant-b-token"]) as shop_b,
    ):
        a = SaleorClient(http=http, secret={"url": shop_a.url, "token": "tenant-a-token"})
        b = SaleorClient(http=http, secret={"url": shop_b.url, "token": "tenant-b-token"})
        await b.create_product(
            product_type_id=global_id("ProductType", 2),
            category_id=global_id("Category", 3),
            name="B Only Scarf",
            slug="b-only-scarf",
            external_reference="action-of-b",
        )
        found = await b.product_by_external_reference("action-of-b")
        assert found is not None and found["slug"] == "b-only-scarf"
        assert await a.product_by_external_reference("action-of-b") is None

        # B's token means nothing to shop A: it is anonymous there, and reported as unknown
        # (not as a missing permission, which is how Saleor words it).
        b_token_at_a = SaleorClient(
            http=http, secret={"url": shop_a.url, "token": "tenant-b-token"}
        )
        with pytest.raises(ConnectorAuthError, match="does not recognise the token"):
            await b_token_at_a.list_orders()
        with pytest.raises(ConnectorAuthError, match="does not recognise the token"):
            await b_token_at_a.list_channels()
        assert (await a.list_orders())["total_count"] == 3
        assert {r.token for r in shop_b.requests} == {"tenant-b-token"}


async def test_amounts_go_out_exactly(http: httpx.AsyncClient, fake: FakeSaleorServer) -> None:
    client = shop(http, fake)
    variant = global_id("ProductVariant", 1)
    listings = await client.update_variant_channel_listing(
        variant_id=variant,
        channel_ids=[global_id("Channel", 1)],
        price=Decimal("19.99"),
        cost_price=Decimal("7.10"),
    )
    (sent,) = fake.requests_for("ProductVariantChannelListingUpdate")
    assert sent.variables is not None
    assert sent.variables["input"] == [
        {"channelId": global_id("Channel", 1), "price": "19.99", "costPrice": "7.10"}
    ]
    usd = next(p for p in listings["prices"] if p["channel_id"] == global_id("Channel", 1))
    assert (usd["price"], usd["currency"], usd["cost_price"]) == (19.99, "USD", 7.1)


async def test_one_product_is_asked_for_by_id_alone_even_when_a_slug_is_given(
    http: httpx.AsyncClient, fake: FakeSaleorServer
) -> None:
    tee = global_id("Product", 1)
    product = await shop(http, fake).get_product(
        id=tee, slug="blue-hoodie", channel="default-channel"
    )
    assert product is not None and product["name"] == "Monospace Tee"
    (sent,) = fake.requests_for("Product")
    assert sent.variables == {"id": tee, "channel": "default-channel"}


async def test_a_malformed_id_is_refused_before_it_is_sent(
    http: httpx.AsyncClient, fake: FakeSaleorServer
) -> None:
    with pytest.raises(ConnectorRequestError, match="'1042' is not a Saleor Order id"):
        await shop(http, fake).get_order(id="1042")
    with pytest.raises(ConnectorRequestError, match="is not a Saleor Product id"):
        await shop(http, fake).get_product(id=global_id("Order", 1), channel="default-channel")
    assert fake.requests_for("Order") == fake.requests_for("Product") == []


async def test_an_unknown_channel_names_the_shops_channels_and_they_are_kept_a_while(
    http: httpx.AsyncClient, fake: FakeSaleorServer
) -> None:
    client = shop(http, fake)
    for _ in range(2):
        with pytest.raises(ConnectorRequestError) as caught:
            await client.search_products(search=None, channel="default")
        assert caught.value.message == (
            "no channel 'default': the shop's channels are 'default-channel' (USD), "
            "'channel-pln' (PLN)"
        )
    await client.search_products(search="tee", channel="default-channel")
    await shop(http, fake).low_stock(threshold=5, channel="channel-pln")
    # Looked up again only for a slug it did not know; never sent to a products query.
    assert len(fake.requests_for("Channels")) == 2
    assert [
        r.variables and r.variables["channel"] for r in fake.requests_for("SearchProducts")
    ] == ["default-channel"]


async def test_an_internal_server_error_answered_to_a_read_is_retried(
    http: httpx.AsyncClient, fake: FakeSaleorServer
) -> None:
    fake.fail_next(200, body=INTERNAL_SERVER_ERROR)
    assert len(await shop(http, fake).list_channels()) == 2
    assert len(fake.requests_for("Channels")) == 2


async def test_a_field_the_token_may_not_read_is_withheld_and_the_rest_returned(
    http: httpx.AsyncClient, fake: FakeSaleorServer
) -> None:
    client = shop(http, fake, token=CUSTOMERS_ONLY)
    customers = await client.list_customers(search=None)
    assert [c["email"] for c in customers["items"]] == [
        "alice@example.com",
        "bob@example.com",
        "carol@example.com",
    ]
    assert {c["orders"] for c in customers["items"]} == {None}
    assert client.withheld == ["customers.orders needs MANAGE_ORDERS"]


async def test_a_new_product_is_found_by_its_slug_or_sku_before_search_indexes_it(
    http: httpx.AsyncClient, fake: FakeSaleorServer
) -> None:
    client = shop(http, fake)
    created = await client.create_product(
        product_type_id=global_id("ProductType", 2),
        category_id=global_id("Category", 3),
        name="Wool Scarf",
        slug="wool-scarf",
    )
    await client.update_product_channel_listing(
        product_id=created["id"], channel_ids=[global_id("Channel", 1)]
    )
    await client.create_variant(
        product_id=created["id"],
        sku="SCARF-1",
        name="Wool Scarf",
        warehouse_id=global_id("Warehouse", 1),
        quantity=3,
    )
    for words in ("wool-scarf", "SCARF-1"):
        found = await client.search_products(search=words, channel="default-channel")
        assert [p["id"] for p in found["items"]] == [created["id"]]
    assert (await client.search_products(search="nothing-like-it", channel="default-channel"))[
        "items"
    ] == []


async def test_an_expired_staff_token_is_a_refused_token_and_an_unknown_one_is_unknown(
    http: httpx.AsyncClient, fake: FakeSaleorServer
) -> None:
    login = {
        "query": 'mutation { tokenCreate(email: "staff@example.com", '
        'password: "staff-password") { token errors { message } } }'
    }
    staff_jwt = (await http.post(fake.url, json=login)).json()["data"]["tokenCreate"]["token"]
    client = shop(http, fake, token=staff_jwt)
    assert len(await client.list_channels()) == 2

    fake.advance_clock(301)  # Saleor's staff tokens last 300 s
    with pytest.raises(ConnectorAuthError, match="Signature has expired"):
        await client.list_orders()
    with pytest.raises(ConnectorAuthError, match="does not recognise the token"):
        await shop(http, fake, token="never-issued-token").variant_by_sku("MONO-S")
