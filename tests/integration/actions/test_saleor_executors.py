"""Saleor action executors against the fake Saleor over real HTTP: each action lands at the shop
once, also when it runs again after a crash or after a call whose answer never came back."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from opshub.actions.execution import ExecutionContext
from opshub.actions.executors import saleor as executors
from opshub.actions.kinds import OrderNote, ProductCreate, StockUpdate, VoucherCreate
from opshub.config import Settings
from opshub.connectors.errors import ConnectorRequestError, ConnectorUnavailableError
from opshub.connectors.saleor import SaleorClient
from opshub.credentials.models import Provider, Source
from opshub.credentials.resolver import ResolvedCredential
from tests.fakes.saleor import FakeSaleorServer, global_id

TOKEN = "staff-token-executors"
USD, PLN = global_id("Channel", 1), global_id("Channel", 2)
AMERICAS = global_id("Warehouse", 1)
ORDER = global_id("Order", 1)
PRODUCT_STEPS = [
    "productCreate",
    "productChannelListingUpdate",  # listed hidden, then published last
    "productVariantCreate",
    "productVariantChannelListingUpdate",
]
ONCE_EACH = [1, 2, 1, 1]
AUDIOBOOK = global_id("ProductType", 3)
AUDIOBOOK_FORMAT = {
    "id": global_id("Attribute", 2),
    "name": "Audiobook format",
    "input_type": "DROPDOWN",
    "values": ["MP3"],
}
STOREFRONT_PRODUCT = """
query Storefront($slug: String!, $channel: String!) {
  product(slug: $slug, channel: $channel) { id name }
}
"""


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeSaleorServer]:
    with FakeSaleorServer(tokens=[TOKEN]) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(fake: FakeSaleorServer) -> None:
    fake.reset()


def context(
    fake: FakeSaleorServer, http: httpx.AsyncClient, action_id: uuid.UUID
) -> ExecutionContext:
    secret = {"url": fake.url, "token": TOKEN}
    credential = ResolvedCredential(Provider.saleor, Source.byok, "fp", secret)
    return ExecutionContext(action_id, uuid.uuid4(), http, Settings(), credential)


def new_product(**changes: object) -> ProductCreate:
    fields: dict[str, object] = {
        "product_type_id": global_id("ProductType", 2),
        "category_id": global_id("Category", 3),
        "name": "Wool Scarf",
        "slug": "wool-scarf",
        "description": "Soft <b>merino</b> & warm.\n\nHand wash only.",
        "channel_ids": [USD, PLN],
        "sku": "SCARF-1",
        "price": Decimal("24.50"),
        "cost_price": Decimal("9.80"),
        "warehouse_id": AMERICAS,
        "quantity": 12,
    }
    return ProductCreate.model_validate({**fields, **changes})


def scarves(fake: FakeSaleorServer) -> list[dict[str, Any]]:
    return [p for p in fake.store.products if p["slug"] == "wool-scarf"]


async def test_a_new_product_is_listed_priced_and_stocked(
    fake: FakeSaleorServer, http: httpx.AsyncClient
) -> None:
    action_id = uuid.uuid4()
    outcome = await executors.create_product(context(fake, http, action_id), new_product())
    assert outcome["slug"] == "wool-scarf" and outcome["quantity"] == 12

    shop = SaleorClient(http=http, secret={"url": fake.url, "token": TOKEN})
    product = await shop.get_product(slug="wool-scarf", channel="default-channel")
    assert product is not None and product["id"] == outcome["product_id"]
    assert product["description"] == "Soft <b>merino</b> & warm.\n\nHand wash only."
    (variant,) = product["variants"]
    assert (variant["id"], variant["sku"]) == (outcome["variant_id"], "SCARF-1")
    assert variant["price"] == {"amount": 24.5, "currency": "USD"}
    assert [(s["warehouse"], s["quantity"]) for s in variant["stocks"]] == [("Americas", 12)]
    pln = await shop.get_product(slug="wool-scarf", channel="channel-pln")
    assert pln is not None and pln["variants"][0]["price"] == {"amount": 24.5, "currency": "PLN"}

    # Saleor keeps the description as EditorJS, the text HTML-escaped.
    (stored,) = scarves(fake)
    blocks = json.loads(str(stored["description"]))["blocks"]
    assert [b["data"]["text"] for b in blocks] == [
        "Soft &lt;b&gt;merino&lt;/b&gt; &amp; warm.",
        "Hand wash only.",
    ]
    assert stored["external_reference"] == str(action_id)


async def test_running_a_product_action_again_creates_nothing_more(
    fake: FakeSaleorServer, http: httpx.AsyncClient
) -> None:
    ctx = context(fake, http, uuid.uuid4())
    first = await executors.create_product(ctx, new_product())
    again = await executors.create_product(ctx, new_product())
    assert again == first
    assert [fake.calls(step) for step in PRODUCT_STEPS] == ONCE_EACH
    assert len(scarves(fake)) == 1


@pytest.mark.parametrize("step", PRODUCT_STEPS)
async def test_a_product_action_cut_off_after_a_step_finishes_on_the_next_run(
    fake: FakeSaleorServer, http: httpx.AsyncClient, step: str
) -> None:
    """The shop applied ``step`` but its answer never arrived; the run failed there."""
    action_id = uuid.uuid4()
    fake.delay_operation(step, 3)
    async with httpx.AsyncClient(timeout=0.5) as impatient:
        with pytest.raises(ConnectorUnavailableError, match="did not answer in time"):
            await executors.create_product(context(fake, impatient, action_id), new_product())
    assert fake.calls(step) == 1  # sent once: a lost answer is not a reason to send again

    fake.delay_operation(step, 0)
    outcome = await executors.create_product(context(fake, http, action_id), new_product())
    assert [fake.calls(s) for s in PRODUCT_STEPS] == ONCE_EACH
    (scarf,) = scarves(fake)
    (variant,) = scarf["variants"]
    assert variant["prices"] == {"default-channel": 24.5, "channel-pln": 24.5}
    assert outcome["variant_id"] == global_id("ProductVariant", variant["pk"])


async def shown_to_shoppers(http: httpx.AsyncClient, fake: FakeSaleorServer, slug: str) -> bool:
    """Whether the storefront (no token) finds the product in the default channel."""
    body = {"query": STOREFRONT_PRODUCT, "variables": {"slug": slug, "channel": "default-channel"}}
    answer = (await http.post(fake.url, json=body)).json()
    return answer["data"]["product"] is not None


async def test_a_product_of_a_type_with_required_attributes_is_published_only_once_complete(
    fake: FakeSaleorServer, http: httpx.AsyncClient
) -> None:
    payload = new_product(product_type_id=AUDIOBOOK, variant_attributes=[AUDIOBOOK_FORMAT])
    outcome = await executors.create_product(context(fake, http, uuid.uuid4()), payload)

    assert outcome["attributes"] == {"Audiobook format": ["MP3"]}
    (scarf,) = scarves(fake)
    assert scarf["variants"][0]["attributes"] == {2: ["MP3"]}
    assert scarf["listings"]["default-channel"]["isPublished"] is True
    assert await shown_to_shoppers(http, fake, "wool-scarf")
    # The variant is created and priced before the product is published, which comes last.
    written = [
        r.operation_name for r in fake.requests if r.query and r.query.startswith("mutation")
    ]
    assert written == [
        "ProductCreate",
        "ProductChannelListingUpdate",
        "ProductVariantCreate",
        "ProductVariantChannelListingUpdate",
        "ProductChannelListingUpdate",
    ]
    listings = fake.requests_for("ProductChannelListingUpdate")
    assert [r.variables and r.variables["input"]["updateChannels"][0]["isPublished"]
            for r in listings] == [False, True]  # fmt: skip


async def test_a_required_attribute_without_a_value_is_refused_before_any_write(
    fake: FakeSaleorServer, http: httpx.AsyncClient
) -> None:
    with pytest.raises(ConnectorRequestError, match="requires a value for 'Audiobook format'"):
        await executors.create_product(
            context(fake, http, uuid.uuid4()), new_product(product_type_id=AUDIOBOOK)
        )
    assert fake.calls("productCreate") == 0 and scarves(fake) == []


async def test_a_product_whose_variant_is_refused_is_not_shown_to_shoppers(
    fake: FakeSaleorServer, http: httpx.AsyncClient
) -> None:
    gone = global_id("Warehouse", 99)  # the warehouse was deleted after the proposal
    with pytest.raises(ConnectorRequestError, match="Couldn't resolve id"):
        await executors.create_product(
            context(fake, http, uuid.uuid4()), new_product(warehouse_id=gone)
        )
    (scarf,) = scarves(fake)
    assert scarf["variants"] == []
    assert not await shown_to_shoppers(http, fake, "wool-scarf")


async def test_an_internal_server_error_from_a_create_race_is_retried_later_and_settles(
    fake: FakeSaleorServer, http: httpx.AsyncClient
) -> None:
    """Saleor answers HTTP 200 "Internal Server Error" when two creates of one value race; the
    product was written. The run fails as retryable, and the next run finds and finishes it."""
    action_id = uuid.uuid4()
    fake.race_next("productCreate")
    with pytest.raises(ConnectorUnavailableError, match="Internal Server Error"):
        await executors.create_product(context(fake, http, action_id), new_product())
    outcome = await executors.create_product(context(fake, http, action_id), new_product())
    assert [fake.calls(s) for s in PRODUCT_STEPS] == ONCE_EACH
    assert outcome["product_id"] == global_id("Product", scarves(fake)[0]["pk"])


async def test_a_sku_taken_by_another_product_is_refused_before_any_write(
    fake: FakeSaleorServer, http: httpx.AsyncClient
) -> None:
    with pytest.raises(ConnectorRequestError, match="SKU MONO-S already belongs"):
        await executors.create_product(context(fake, http, uuid.uuid4()), new_product(sku="MONO-S"))
    assert fake.calls("productCreate") == 0 and scarves(fake) == []


async def test_stock_is_set_not_added(fake: FakeSaleorServer, http: httpx.AsyncClient) -> None:
    ctx = context(fake, http, uuid.uuid4())
    payload = StockUpdate(
        variant_id=global_id("ProductVariant", 1),
        warehouse_id=AMERICAS,
        quantity=30,
        previous_quantity=12,
    )
    first = await executors.update_stock(ctx, payload)
    again = await executors.update_stock(ctx, payload)
    assert first == again
    assert (first["sku"], first["quantity"], first["previous_quantity"]) == ("MONO-S", 30, 12)
    shop = SaleorClient(http=http, secret={"url": fake.url, "token": TOKEN})
    variant = await shop.variant_by_sku("MONO-S")
    assert variant is not None
    assert {s["warehouse_id"]: s["quantity"] for s in variant["stocks"]}[AMERICAS] == 30


def voucher(**changes: object) -> VoucherCreate:
    fields: dict[str, object] = {
        "name": "Autumn 15%",
        "code": "AUTUMN15",
        "discount_value_type": "PERCENTAGE",
        "discount_value": Decimal(15),
        "channel_id": USD,
        "usage_limit": 200,
        "min_amount_spent": Decimal("40.00"),
    }
    return VoucherCreate.model_validate({**fields, **changes})


async def test_a_voucher_lands_once_with_its_channel_terms(
    fake: FakeSaleorServer, http: httpx.AsyncClient
) -> None:
    ctx = context(fake, http, uuid.uuid4())
    outcome = await executors.create_voucher(ctx, voucher())
    assert await executors.create_voucher(ctx, voucher()) == outcome
    assert (fake.calls("voucherCreate"), fake.calls("voucherChannelListingUpdate")) == (1, 1)

    shop = SaleorClient(http=http, secret={"url": fake.url, "token": TOKEN})
    (found,) = (await shop.list_vouchers(search="autumn", channel="default-channel"))["items"]
    assert (found["id"], found["code"], found["usage_limit"]) == (
        outcome["voucher_id"],
        "AUTUMN15",
        200,
    )
    assert (found["discount_value"], found["channels"][0]["min_spent"]) == (15.0, 40.0)


async def test_a_voucher_cut_off_after_creation_gets_its_channel_on_the_next_run(
    fake: FakeSaleorServer, http: httpx.AsyncClient
) -> None:
    action_id = uuid.uuid4()
    fake.delay_operation("voucherCreate", 3)
    async with httpx.AsyncClient(timeout=0.5) as impatient:
        with pytest.raises(ConnectorUnavailableError):
            await executors.create_voucher(context(fake, impatient, action_id), voucher())
    fake.delay_operation("voucherCreate", 0)
    outcome = await executors.create_voucher(context(fake, http, action_id), voucher())
    assert (fake.calls("voucherCreate"), fake.calls("voucherChannelListingUpdate")) == (1, 1)
    assert outcome["discount_value"] == 15.0
    assert [v["code"] for v in fake.store.vouchers].count("AUTUMN15") == 1


async def test_a_voucher_past_the_first_page_of_its_code_search_is_found_on_the_next_run(
    fake: FakeSaleorServer, http: httpx.AsyncClient
) -> None:
    """Saleor's voucher search matches substrings: 120 older codes contain AUTUMN15, so the
    voucher this action created is on the second page of 100."""
    for n in range(120):
        fake.add_voucher(f"AUTUMN15-{n:03d}")
    action_id = uuid.uuid4()
    fake.delay_operation("voucherCreate", 3)
    async with httpx.AsyncClient(timeout=0.5) as impatient:
        with pytest.raises(ConnectorUnavailableError):
            await executors.create_voucher(context(fake, impatient, action_id), voucher())
    fake.delay_operation("voucherCreate", 0)
    outcome = await executors.create_voucher(context(fake, http, action_id), voucher())
    assert (fake.calls("voucherCreate"), fake.calls("voucherChannelListingUpdate")) == (1, 1)
    assert outcome["code"] == "AUTUMN15" and outcome["discount_value"] == 15.0
    assert len(fake.requests_for("VoucherByCode")) == 4  # two pages on each run


async def test_a_code_held_by_another_voucher_is_refused(
    fake: FakeSaleorServer, http: httpx.AsyncClient
) -> None:
    with pytest.raises(ConnectorRequestError, match="WELCOME10 is already used by voucher"):
        await executors.create_voucher(context(fake, http, uuid.uuid4()), voucher(code="WELCOME10"))
    assert fake.calls("voucherCreate") == 0


def notes(fake: FakeSaleorServer) -> list[str]:
    order = next(o for o in fake.store.orders if o["pk"] == 1)
    return [e["message"] for e in order["events"] if e["type"] == "NOTE_ADDED"]


async def test_an_order_note_is_added_once_and_says_which_action(
    fake: FakeSaleorServer, http: httpx.AsyncClient
) -> None:
    action_id = uuid.UUID("1a2b3c4d-0000-4000-8000-000000000000")
    ctx = context(fake, http, action_id)
    payload = OrderNote(order_id=ORDER, message="Customer asked for gift wrap.")
    outcome = await executors.add_order_note(ctx, payload)
    assert await executors.add_order_note(ctx, payload) == outcome
    assert notes(fake) == ["Customer asked for gift wrap. (opshub action 1a2b3c4d)"]
    assert fake.calls("orderNoteAdd") == 1

    # Another action with the same words is another note.
    await executors.add_order_note(context(fake, http, uuid.uuid4()), payload)
    assert len(notes(fake)) == 2


async def test_an_order_note_cut_off_mid_call_is_not_added_twice(
    fake: FakeSaleorServer, http: httpx.AsyncClient
) -> None:
    action_id = uuid.uuid4()
    payload = OrderNote(order_id=ORDER, message="Refund approved by Sam.")
    fake.delay_operation("orderNoteAdd", 3)
    async with httpx.AsyncClient(timeout=0.5) as impatient:
        with pytest.raises(ConnectorUnavailableError):
            await executors.add_order_note(context(fake, impatient, action_id), payload)
    fake.delay_operation("orderNoteAdd", 0)
    outcome = await executors.add_order_note(context(fake, http, action_id), payload)
    assert fake.calls("orderNoteAdd") == 1
    assert notes(fake) == [outcome["message"]]
    assert outcome["message"].endswith(f"(opshub action {action_id.hex[:8]})")
