"""Executors for Saleor actions: a new product, a stock level, a voucher, an order note.

Each may run again after a crash mid-way (or after a call whose answer was lost) and still
leave exactly one product, voucher or note at the shop: it first looks for what an earlier
attempt of the same action did and only does what is missing.

- product: created with ``externalReference`` = the action id and listed hidden; its variant
  (with the type's required attribute values, checked before anything is written) is found by
  SKU, prices are added only where missing, and publishing comes last: a run that fails
  part-way leaves nothing a shopper can see;
- voucher: found by its code (a code is unique in a shop);
- order note: its text ends with a marker holding the action id, and a note with that marker
  among the order's events means it was added;
- stock: an absolute level, so setting it again changes nothing.
"""

from __future__ import annotations

from typing import Any

from opshub.actions.execution import ExecutionContext
from opshub.actions.kinds import OrderNote, ProductCreate, StockUpdate, VoucherCreate
from opshub.connectors.errors import ConnectorRequestError, ConnectorResponseError
from opshub.connectors.saleor import SaleorClient
from opshub.connectors.saleor_attributes import missing_required
from opshub.credentials.models import Provider


def _client(ctx: ExecutionContext) -> SaleorClient:
    return SaleorClient(http=ctx.http, secret=ctx.secret)


def note_marker(ctx: ExecutionContext) -> str:
    """Ends the note's text; eight hex digits of the action id tell its notes apart."""
    return f"(opshub action {ctx.action_id.hex[:8]})"


async def create_product(ctx: ExecutionContext, payload: ProductCreate) -> dict[str, Any]:
    saleor = _client(ctx)
    reference = str(ctx.action_id)
    product = await saleor.product_by_external_reference(reference)
    variant = await saleor.variant_by_sku(payload.sku)
    if variant is not None and (product is None or variant["product_id"] != product["id"]):
        # Checked before anything is written: the shop is left as it was.
        raise ConnectorRequestError(
            Provider.saleor,
            f"SKU {payload.sku} already belongs to another product ({variant['product_id']})",
        )
    attributes = [a.model_dump() for a in payload.variant_attributes]
    if variant is None:
        await _check_attributes(saleor, payload.product_type_id, attributes)
    if product is None:
        product = await saleor.create_product(
            product_type_id=payload.product_type_id,
            category_id=payload.category_id,
            name=payload.name,
            slug=payload.slug,
            description=payload.description,
            external_reference=reference,
        )
    listed = {listing["channel_id"] for listing in product["listings"]}
    unlisted = [c for c in payload.channel_ids if c not in listed]
    if unlisted:  # hidden until its variant is priced: a variant is priced per listed channel
        product = await saleor.update_product_channel_listing(
            product_id=product["id"], channel_ids=unlisted, published=False
        )
    if variant is None:
        variant = await saleor.create_variant(
            product_id=product["id"],
            sku=payload.sku,
            name=payload.name,
            warehouse_id=payload.warehouse_id,
            quantity=payload.quantity,
            attributes=attributes,
        )
    unpriced = [c for c in payload.channel_ids if c not in variant["channel_ids"]]
    if unpriced:
        await saleor.update_variant_channel_listing(
            variant_id=variant["id"],
            channel_ids=unpriced,
            price=payload.price,
            cost_price=payload.cost_price,
        )
    published = {c["channel_id"] for c in product["listings"] if c["published"]}
    hidden = [c for c in payload.channel_ids if c not in published]
    if hidden:
        await saleor.update_product_channel_listing(product_id=product["id"], channel_ids=hidden)
    return {
        "product_id": product["id"],
        "variant_id": variant["id"],
        "slug": product["slug"],
        "sku": payload.sku,
        "channel_ids": list(payload.channel_ids),
        "price": str(payload.price),
        "cost_price": None if payload.cost_price is None else str(payload.cost_price),
        "warehouse_id": payload.warehouse_id,
        "quantity": payload.quantity,
        "attributes": {a.name: a.values for a in payload.variant_attributes},
    }


async def _check_attributes(saleor: SaleorClient, product_type_id: str, given: list[Any]) -> None:
    """Refused before any write when the type (changed since the proposal, perhaps) requires a
    variant attribute the proposal has no value for."""
    product_type = await saleor.get_product_type(product_type_id)
    if product_type is None:
        raise ConnectorRequestError(
            Provider.saleor, f"Saleor has no product type {product_type_id}"
        )
    if missing := missing_required(product_type, given):
        raise ConnectorRequestError(
            Provider.saleor,
            f"product type '{product_type['name']}' requires a value for "
            f"{', '.join(repr(m) for m in missing)}: propose the product again with it",
        )


async def update_stock(ctx: ExecutionContext, payload: StockUpdate) -> dict[str, Any]:
    variant = await _client(ctx).update_stock(
        variant_id=payload.variant_id, warehouse_id=payload.warehouse_id, quantity=payload.quantity
    )
    here = [s["quantity"] for s in variant["stocks"] if s["warehouse_id"] == payload.warehouse_id]
    return {
        "variant_id": variant["id"],
        "sku": variant["sku"],
        "warehouse_id": payload.warehouse_id,
        "quantity": here[0] if here else payload.quantity,
        "previous_quantity": payload.previous_quantity,
    }


async def create_voucher(ctx: ExecutionContext, payload: VoucherCreate) -> dict[str, Any]:
    saleor = _client(ctx)
    voucher = await saleor.voucher_by_code(payload.code)
    if voucher is None:
        voucher = await saleor.create_voucher(
            name=payload.name,
            code=payload.code,
            discount_value_type=payload.discount_value_type,
            usage_limit=payload.usage_limit,
        )
    elif voucher["name"] != payload.name:
        # Not an earlier attempt of this action: someone else's voucher holds the code.
        raise ConnectorRequestError(
            Provider.saleor, f"code {payload.code} is already used by voucher {voucher['name']!r}"
        )
    if not any(c["channel_id"] == payload.channel_id for c in voucher["channels"]):
        voucher = await saleor.update_voucher_channel_listing(
            voucher_id=voucher["id"],
            channel_id=payload.channel_id,
            discount_value=payload.discount_value,
            min_amount_spent=payload.min_amount_spent,
        )
    listing = next((c for c in voucher["channels"] if c["channel_id"] == payload.channel_id), None)
    if listing is None:
        raise ConnectorResponseError(Provider.saleor, "Saleor did not list the voucher's channel")
    return {
        "voucher_id": voucher["id"],
        "code": payload.code,
        "name": voucher["name"],
        "discount_value_type": voucher["discount_value_type"],
        "discount_value": listing["discount_value"],
        "currency": listing["currency"],
        "channel_id": payload.channel_id,
        "usage_limit": voucher["usage_limit"],
        "min_amount_spent": listing["min_spent"],
    }


async def add_order_note(ctx: ExecutionContext, payload: OrderNote) -> dict[str, Any]:
    saleor = _client(ctx)
    marker = note_marker(ctx)
    events = await saleor.order_events(order_id=payload.order_id)
    note = next(
        (
            e
            for e in events
            if e["type"] in ("NOTE_ADDED", "NOTE_UPDATED")
            and (e["message"] or "").rstrip().endswith(marker)
        ),
        None,
    )
    if note is None:
        message = f"{payload.message.rstrip()} {marker}"
        note = await saleor.add_order_note(order_id=payload.order_id, message=message)
    return {
        "order_id": payload.order_id,
        "event_id": note["id"],
        "message": note["message"],
        "date": note["date"],
    }
