"""What opshub sends to Saleor is valid 3.20 GraphQL, and comes only from saleor.graphql."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import graphql
import httpx
import pytest

from opshub.connectors.errors import ConnectorError
from opshub.connectors.http import RetryPolicy
from opshub.connectors.saleor import OPERATIONS, SaleorClient
from tests.fakes.saleor import saleor_schema, validate_operation

GRAPHQL_FILE = Path(__file__).parents[3] / "src" / "opshub" / "connectors" / "saleor.graphql"
CATEGORY_ID = "Q2F0ZWdvcnk6Mg=="  # Category:2
PRODUCT, VARIANT, WAREHOUSE = "UHJvZHVjdDox", "UHJvZHVjdFZhcmlhbnQ6MQ==", "V2FyZWhvdXNlOjE="
CHANNEL, ORDER = "Q2hhbm5lbDox", "T3JkZXI6MQ=="
AUDIOBOOK_FORMAT = {"id": "QXR0cmlidXRlOjI=", "input_type": "DROPDOWN", "values": ["MP3"]}
CHANNELS = [{"id": CHANNEL, "slug": "default-channel", "name": "Default", "active": True,
             "currency": "USD", "country": {"code": "US"}, "warehouses": []}]  # fmt: skip

Call = Callable[[SaleorClient], Awaitable[object]]
CALLS: list[Call] = [
    lambda c: c.search_products(search="tee", channel="default-channel"),
    lambda c: c.search_products(search=None, channel="default-channel", category="t-shirts"),
    lambda c: c.get_product(slug="monospace-tee", channel="default-channel"),
    lambda c: c.list_categories(search=None),
    lambda c: c.list_product_types(search=None),
    lambda c: c.get_product_type("UHJvZHVjdFR5cGU6Mw=="),
    lambda c: c.list_channels(),
    lambda c: c.list_warehouses(),
    lambda c: c.list_orders(status="unfulfilled"),
    lambda c: c.unfulfilled_orders(channel=None),
    lambda c: c.get_order(id="T3JkZXI6MQ=="),
    lambda c: c.list_customers(search="bob"),
    lambda c: c.list_vouchers(search=None, channel="default-channel"),
    lambda c: c.low_stock(threshold=5, channel="default-channel"),
    lambda c: c.product_by_external_reference("ref"),
    lambda c: c.variant_by_sku("SKU-1"),
    lambda c: c.voucher_by_code("CODE"),
    lambda c: c.order_events(order_id="T3JkZXI6MQ=="),
    lambda c: c.create_product(
        product_type_id="UHJvZHVjdFR5cGU6MQ==", category_id=CATEGORY_ID, name="N", slug="n"
    ),
    lambda c: c.update_product_channel_listing(product_id=PRODUCT, channel_ids=[CHANNEL]),
    lambda c: c.create_variant(
        product_id=PRODUCT,
        sku="S",
        name="N",
        warehouse_id=WAREHOUSE,
        quantity=1,
        attributes=[AUDIOBOOK_FORMAT],
    ),
    lambda c: c.update_variant_channel_listing(
        variant_id=VARIANT, channel_ids=[CHANNEL], price=Decimal("1.50"), cost_price=None
    ),
    lambda c: c.update_stock(variant_id=VARIANT, warehouse_id=WAREHOUSE, quantity=3),
    lambda c: c.create_voucher(name="N", code="CODE", discount_value_type="FIXED"),
    lambda c: c.update_voucher_channel_listing(
        voucher_id="Vm91Y2hlcjox", channel_id=CHANNEL, discount_value=Decimal(5)
    ),
    lambda c: c.add_order_note(order_id=ORDER, message="hello"),
]


def test_every_operation_in_the_file_is_valid_saleor_3_20() -> None:
    document = graphql.parse(GRAPHQL_FILE.read_text())
    assert graphql.validate(saleor_schema(), document) == []
    names = [
        d.name.value
        for d in document.definitions
        if isinstance(d, graphql.OperationDefinitionNode) and d.name
    ]
    assert sorted(names) == sorted(OPERATIONS)


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_each_operation_is_sent_as_a_valid_document_of_its_own(name: str) -> None:
    """One operation and exactly the fragments it spreads: Saleor rejects unused fragments."""
    assert validate_operation(OPERATIONS[name]) == []
    operations = [
        d
        for d in graphql.parse(OPERATIONS[name]).definitions
        if isinstance(d, graphql.OperationDefinitionNode)
    ]
    assert [o.name.value for o in operations if o.name] == [name]


async def test_the_client_sends_only_the_files_operations_and_uses_them_all() -> None:
    sent: list[dict[str, object]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        sent.append(body)
        if body["operationName"] == "Channels":  # known channels let channel-scoped reads go on
            return httpx.Response(200, json={"data": {"channels": CHANNELS}})
        if body["operationName"] == "Customers":  # a refused permission asks who the token is
            denied = {
                "message": "You need one of the following permissions: MANAGE_USERS",
                "path": ["customers"],
                "extensions": {"exception": {"code": "PermissionDenied"}},
            }
            return httpx.Response(200, json={"errors": [denied], "data": {"customers": None}})
        return httpx.Response(200, json={"errors": [{"message": "stop here"}], "data": None})

    secret = {"url": "https://shop.example.com/graphql/", "token": "t"}
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        client = SaleorClient(http=http, secret=secret, policy=RetryPolicy(attempts=1))
        for call in CALLS:
            with contextlib.suppress(ConnectorError):  # only list_channels gets an answer
                await call(client)
        # With a category id there is no slug to look up: the products query itself is sent.
        with pytest.raises(ConnectorError):
            await client.search_products(search=None, channel="c", category=CATEGORY_ID)

    for body in sent:
        name = body["operationName"]
        assert isinstance(name, str) and body["query"] == OPERATIONS[name]
    assert {b["operationName"] for b in sent} == set(OPERATIONS)
