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
