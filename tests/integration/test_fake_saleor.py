"""The fake Saleor server executes the real 3.20 schema: proven with the real gql client."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError, TransportServerError
from gql.transport.httpx import HTTPXAsyncTransport

from tests.fakes.saleor import FakeSaleorServer, validate_operation

TOKEN = "staff-token"

PRODUCTS = """
query Products($channel: String!, $first: Int!, $after: String) {
  products(channel: $channel, first: $first, after: $after, sortBy: {field: NAME, direction: ASC}) {
    totalCount
    edges { node {
      id name slug category { name } productType { name }
      pricing { priceRange { start { gross { amount currency } } } }
      variants { id sku quantityAvailable stocks { warehouse { name } quantity quantityAllocated } }
    } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
ORDERS = """
query Orders($first: Int!) {
  orders(first: $first, filter: {search: "alice@example.com"}) {
    edges { node {
      id number status paymentStatus userEmail total { gross { amount currency } }
      lines { productName productSku quantity quantityFulfilled unitPrice { gross { amount } } }
    } }
  }
}
"""
CATALOGUE = """
query Catalogue {
  channels { slug currencyCode warehouses { slug } }
  categories(first: 10, level: 0) {
    edges { node { slug children(first: 5) { edges { node { slug } } } } }
  }
  warehouses(first: 10) { edges { node { slug address { city country { code } } } } }
  customers(first: 10, filter: {search: "bob"}) { edges { node { email orders { totalCount } } } }
  vouchers(first: 10, channel: "default-channel") {
    edges { node { code discountValueType discountValue channelListings { channel { slug } } } }
  }
}
"""
UNKNOWN_FIELD = "query Bad { products(first: 1) { edges { node { id colour } } } }"
ALL_OPERATIONS = [PRODUCTS, ORDERS, CATALOGUE]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeSaleorServer]:
    with FakeSaleorServer(tokens=[TOKEN]) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(fake: FakeSaleorServer) -> None:
    fake.reset()


async def run(
    fake: FakeSaleorServer, query: str, variables: dict[str, Any] | None = None, token: str = TOKEN
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = HTTPXAsyncTransport(url=fake.url, headers=headers)
    async with Client(transport=transport) as session:
        name = re.search(r"(?:query|mutation) (\w+)", query)
        request = GraphQLRequest(
            query, variable_values=variables, operation_name=name[1] if name else None
        )
        return await session.execute(request)


async def post(fake: FakeSaleorServer, json: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(fake.url, json=json)


@pytest.mark.parametrize("operation", ALL_OPERATIONS)
def test_operations_validate_against_the_schema(operation: str) -> None:
    assert validate_operation(operation) == []
    assert validate_operation(UNKNOWN_FIELD)  # and the checker does reject


async def test_products_paginate_across_two_pages(fake: FakeSaleorServer) -> None:
    variables = {"channel": "default-channel", "first": 3}
    first = (await run(fake, PRODUCTS, variables))["products"]
    assert first["totalCount"] == 5
    assert first["pageInfo"]["hasNextPage"] is True
    names = [e["node"]["name"] for e in first["edges"]]
    assert names == ["Blue Hoodie", "Canvas Cap", "Dash Force Tee"]

    after = first["pageInfo"]["endCursor"]
    second = (await run(fake, PRODUCTS, {**variables, "after": after}))["products"]
    assert [e["node"]["name"] for e in second["edges"]] == ["Leather Belt", "Monospace Tee"]
    assert second["pageInfo"]["hasNextPage"] is False

    tee = second["edges"][1]["node"]
    assert tee["category"]["name"] == "T-shirts"
    assert tee["pricing"]["priceRange"]["start"]["gross"] == {"amount": 20.0, "currency": "USD"}
    assert {v["sku"]: v["quantityAvailable"] for v in tee["variants"]} == {
        "MONO-S": 17,
        "MONO-M": 3,
    }

    recorded = fake.requests_for("Products")
    assert [r.variables for r in recorded] == [variables, {**variables, "after": after}]
    assert all(r.token == TOKEN and "products(" in (r.query or "") for r in recorded)


async def test_channel_scopes_prices(fake: FakeSaleorServer) -> None:
    data = await run(fake, PRODUCTS, {"channel": "channel-pln", "first": 10})
    nodes = [e["node"] for e in data["products"]["edges"]]
    assert [n["slug"] for n in nodes] == ["blue-hoodie", "canvas-cap", "monospace-tee"]
    assert nodes[0]["pricing"]["priceRange"]["start"]["gross"]["currency"] == "PLN"


async def test_unknown_field_is_rejected_by_validation(fake: FakeSaleorServer) -> None:
    with pytest.raises(TransportQueryError) as caught:
        await run(fake, UNKNOWN_FIELD)
    error = caught.value.errors[0]  # type: ignore[index]
    assert "Cannot query field 'colour' on type 'Product'" in error["message"]
    assert error["extensions"]["exception"]["code"] == "GraphQLError"
    raw = await post(fake, json={"query": UNKNOWN_FIELD})
    assert raw.status_code == 400 and "data" not in raw.json()


async def test_wrong_token_gets_permission_denied(fake: FakeSaleorServer) -> None:
    with pytest.raises(TransportQueryError) as caught:
        await run(fake, ORDERS, {"first": 5}, token="not-a-staff-token")
    error = caught.value.errors[0]  # type: ignore[index]
    assert error["extensions"]["exception"]["code"] == "PermissionDenied"
    assert "MANAGE_ORDERS" in error["message"]
    assert error["path"] == ["orders"]
    assert caught.value.data == {"orders": None}
    assert fake.requests[-1].token == "not-a-staff-token"

    raw = await post(fake, json={"query": ORDERS, "variables": {"first": 5}})  # no token
    assert raw.status_code == 200
    assert raw.json()["errors"][0]["extensions"]["exception"]["code"] == "PermissionDenied"


async def test_staff_reads_orders_and_catalogue(fake: FakeSaleorServer) -> None:
    orders = (await run(fake, ORDERS, {"first": 5}))["orders"]["edges"]
    assert [o["node"]["number"] for o in orders] == ["3", "1"]
    first = orders[1]["node"]
    assert first["total"]["gross"] == {"amount": 70.0, "currency": "USD"}
    assert [line["productSku"] for line in first["lines"]] == ["MONO-S", "BELT-1"]

    data = await run(fake, CATALOGUE)
    assert [c["slug"] for c in data["channels"]] == ["default-channel", "channel-pln"]
    apparel = data["categories"]["edges"][0]["node"]
    assert apparel["children"]["edges"][0]["node"]["slug"] == "t-shirts"
    assert len(data["warehouses"]["edges"]) == 2
    assert data["customers"]["edges"][0]["node"] == {
        "email": "bob@example.com",
        "orders": {"totalCount": 1},
    }
    codes = {e["node"]["code"]: e["node"] for e in data["vouchers"]["edges"]}
    assert codes["WELCOME10"]["discountValue"] == 10.0


async def test_scripted_429_carries_retry_after(fake: FakeSaleorServer) -> None:
    fake.fail_next(status=429, retry_after=2)
    with pytest.raises(TransportServerError) as caught:
        await run(fake, PRODUCTS, {"channel": "default-channel", "first": 1})
    assert caught.value.code == 429

    fake.fail_next(status=429, retry_after=2)
    raw = await post(fake, json={"query": PRODUCTS})
    assert raw.status_code == 429 and raw.headers["retry-after"] == "2"

    fake.fail_next(status=502)
    raw = await post(fake, json={"query": PRODUCTS})
    assert raw.status_code == 502 and raw.text == "Bad Gateway"

    data = await run(fake, PRODUCTS, {"channel": "default-channel", "first": 1})  # back to normal
    assert data["products"]["totalCount"] == 5


CREATE_PRODUCT = """
mutation ProductCreate($input: ProductCreateInput!) {
  productCreate(input: $input) { product { id slug } errors { field message code } }
}
"""
ADD_NOTE = """
mutation OrderNoteAdd($order: ID!, $message: String!) {
  orderNoteAdd(order: $order, input: {message: $message}) {
    event { type message }
    errors { field code }
  }
}
"""
ORDER_EVENTS = "query OrderEvents($id: ID!) { order(id: $id) { events { type message } } }"


async def test_mutations_change_the_catalogue_or_answer_errors(fake: FakeSaleorServer) -> None:
    product_input = {"productType": "UHJvZHVjdFR5cGU6Mg==", "name": "Scarf", "slug": "scarf"}
    created = (await run(fake, CREATE_PRODUCT, {"input": product_input}))["productCreate"]
    assert created["errors"] == [] and created["product"]["slug"] == "scarf"

    again = (await run(fake, CREATE_PRODUCT, {"input": product_input}))["productCreate"]
    assert again["product"] is None
    assert again["errors"] == [
        {"field": "slug", "message": "Product with this Slug already exists.", "code": "UNIQUE"}
    ]
    assert fake.calls("productCreate") == 2

    order = "T3JkZXI6MQ=="
    added = (await run(fake, ADD_NOTE, {"order": order, "message": "Gift"}))["orderNoteAdd"]
    assert added == {"event": {"type": "NOTE_ADDED", "message": "Gift"}, "errors": []}
    events = (await run(fake, ORDER_EVENTS, {"id": order}))["order"]["events"]
    assert events[-1] == {"type": "NOTE_ADDED", "message": "Gift"}

    with pytest.raises(TransportQueryError) as caught:  # a write needs its permission
        await run(fake, ADD_NOTE, {"order": order, "message": "x"}, token="nobody")
    assert "MANAGE_ORDERS" in caught.value.errors[0]["message"]  # type: ignore[index]


# -- how a real Saleor 3.20.119 answers (../shared/specs/saleor-operations.md) -------------------

LOGIN = """
mutation Login($email: String!, $password: String!) {
  tokenCreate(email: $email, password: $password) { token refreshToken errors { code } }
}
"""
REFRESH = """
mutation Refresh($refreshToken: String!) {
  tokenRefresh(refreshToken: $refreshToken) { token errors { code } }
}
"""
CATALOGUE_AND_ORDERS = """
query CatalogueAndOrders {
  categories(first: 1) { edges { node { slug } } }
  orders(first: 1) { edges { node { number } } }
}
"""
PRODUCT_BY = """
query ProductBy($id: ID, $slug: String, $channel: String) {
  product(id: $id, slug: $slug, channel: $channel) { name }
}
"""
AUDIOBOOK_TYPE = """
query Type($id: ID!) {
  productType(id: $id) {
    name
    variantAttributes {
      name inputType valueRequired choices(first: 10) { edges { node { name } } }
    }
  }
}
"""
NEW_VARIANT = """
mutation NewVariant($input: ProductVariantCreateInput!) {
  productVariantCreate(input: $input) { productVariant { sku } errors { field code message } }
}
"""
VOUCHER_SEARCH = """
query VoucherSearch($search: String!, $after: String) {
  vouchers(filter: {search: $search}, first: 100, after: $after) {
    totalCount
    edges { node { code } }
    pageInfo { hasNextPage }
  }
}
"""
CUSTOMER_ORDERS = """
query CustomerOrders { customers(first: 5) { edges { node { email orders { totalCount } } } } }
"""


async def test_a_staff_token_expires_after_its_ttl_and_its_refresh_token_renews_it(
    fake: FakeSaleorServer,
) -> None:
    login = await run(
        fake, LOGIN, {"email": "staff@example.com", "password": "staff-password"}, token=""
    )
    staff = login["tokenCreate"]["token"]
    assert (await run(fake, CATALOGUE_AND_ORDERS, token=staff))["orders"]["edges"]

    fake.advance_clock(300)
    raw = await post_with(fake, CATALOGUE_AND_ORDERS, staff)
    answer = raw.json()
    assert raw.status_code == 200
    assert answer["data"]["categories"]["edges"] == [{"node": {"slug": "apparel"}}]  # public
    assert answer["data"]["orders"] is None
    assert answer["errors"][0]["message"] == "Signature has expired"

    refresh = {"refreshToken": login["tokenCreate"]["refreshToken"]}
    renewed = (await run(fake, REFRESH, refresh, token=""))["tokenRefresh"]["token"]
    assert (await run(fake, CATALOGUE_AND_ORDERS, token=renewed))["orders"]["edges"]


async def post_with(
    fake: FakeSaleorServer, query: str, token: str, **variables: Any
) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(
            fake.url,
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )


async def test_product_refuses_id_with_slug_and_a_malformed_id_and_an_unknown_channel_is_empty(
    fake: FakeSaleorServer,
) -> None:
    both = await post_with(
        fake, PRODUCT_BY, TOKEN, id="UHJvZHVjdDox", slug="blue-hoodie", channel="default-channel"
    )
    assert both.json()["errors"][0]["message"] == "Argument 'id' cannot be combined with 'slug'"
    malformed = await post_with(fake, PRODUCT_BY, TOKEN, id="42", channel="default-channel")
    assert malformed.json()["errors"][0]["message"] == "Couldn't resolve id: 42."
    unknown = await run(fake, PRODUCTS, {"channel": "no-such-channel", "first": 5})
    assert unknown["products"]["edges"] == []
    # Asked without a channel, a token Saleor does not know is asked to name one.
    anonymous = await post_with(fake, PRODUCT_BY, "never-issued", slug="blue-hoodie")
    assert "More than one channel exists" in anonymous.json()["errors"][0]["message"]


async def test_the_audiobook_type_requires_a_variant_attribute(fake: FakeSaleorServer) -> None:
    answer = await run(fake, AUDIOBOOK_TYPE, {"id": "UHJvZHVjdFR5cGU6Mw=="})
    (required, optional) = answer["productType"]["variantAttributes"]
    assert (required["name"], required["inputType"], required["valueRequired"]) == (
        "Audiobook format",
        "DROPDOWN",
        True,
    )
    assert [e["node"]["name"] for e in required["choices"]["edges"]] == ["MP3", "FLAC", "CD"]
    assert (optional["name"], optional["valueRequired"]) == ("Narrator", False)

    fake.store.products.append(
        {"pk": 50, "slug": "sea", "name": "Sea", "category": 3, "type": 3, "channels": [],
         "variants": [], "created": "2026-10-01T09:00:00+00:00", "description": None}
    )  # fmt: skip
    variant = {"product": "UHJvZHVjdDo1MA==", "attributes": [], "sku": "SEA-1"}
    refused = (await run(fake, NEW_VARIANT, {"input": variant}))["productVariantCreate"]
    assert refused == {
        "productVariant": None,
        "errors": [
            {
                "field": "attributes",
                "code": "REQUIRED",
                "message": "All required attributes must take a value.",
            }
        ],
    }
    variant["attributes"] = [{"id": "QXR0cmlidXRlOjI=", "dropdown": {"value": "MP3"}}]
    created = (await run(fake, NEW_VARIANT, {"input": variant}))["productVariantCreate"]
    assert created == {"productVariant": {"sku": "SEA-1"}, "errors": []}


async def test_voucher_search_matches_substrings_past_the_first_page(
    fake: FakeSaleorServer,
) -> None:
    for n in range(25):
        fake.add_voucher(f"XWELCOME10-{n}")
    answer = await run(fake, VOUCHER_SEARCH, {"search": "welcome10"})
    assert answer["vouchers"]["totalCount"] == 26
    assert answer["vouchers"]["edges"][0]["node"]["code"] == "WELCOME10"


async def test_a_scripted_race_does_the_write_and_answers_internal_server_error(
    fake: FakeSaleorServer,
) -> None:
    fake.race_next("productVariantCreate")
    variant = {
        "product": "UHJvZHVjdDo0",
        "attributes": [],
        "sku": "BELT-2",
    }
    raw = await post_with(fake, NEW_VARIANT, TOKEN, input=variant)
    assert (raw.status_code, raw.json()) == (
        200,
        {"errors": [{"message": "Internal Server Error"}]},
    )
    belt = next(p for p in fake.store.products if p["slug"] == "leather-belt")
    assert [v["sku"] for v in belt["variants"]] == ["BELT-1", "BELT-2"]


async def test_a_nested_field_without_its_permission_is_null_and_the_rest_stands() -> None:
    with FakeSaleorServer(tokens={"users-only": {"MANAGE_USERS"}}) as fake:
        raw = await post_with(fake, CUSTOMER_ORDERS, "users-only")
    answer = raw.json()
    emails = [e["node"]["email"] for e in answer["data"]["customers"]["edges"]]
    assert emails == ["alice@example.com", "bob@example.com", "carol@example.com"]
    assert {e["node"]["orders"] for e in answer["data"]["customers"]["edges"]} == {None}
    assert answer["errors"][0]["path"] == ["customers", "edges", 0, "node", "orders"]
    assert answer["errors"][0]["extensions"]["exception"]["code"] == "PermissionDenied"


async def test_a_new_product_is_found_by_search_only_after_the_index_task(
    fake: FakeSaleorServer,
) -> None:
    create = """
    mutation New($input: ProductCreateInput!) { productCreate(input: $input) { errors { code } } }
    """
    await run(fake, create, {"input": {"productType": "UHJvZHVjdFR5cGU6Mg==", "name": "Scarf"}})
    search = """
    query Find($search: String) { products(search: $search, first: 5) { edges { node { slug } } } }
    """
    assert (await run(fake, search, {"search": "scarf"}))["products"]["edges"] == []
    by_slug = await post_with(fake, PRODUCT_BY, TOKEN, slug="scarf")
    assert by_slug.json()["data"]["product"] == {"name": "Scarf"}
    fake.index_search()
    found = await run(fake, search, {"search": "scarf"})
    assert found["products"]["edges"] == [{"node": {"slug": "scarf"}}]
