"""Saleor 3.20 over GraphQL: the reads the e-commerce tools need and the writes the Saleor
action executors send.

Every operation is a named block of ``saleor.graphql``, loaded once; a request carries one of
them (with the fragments it spreads) and its ``operationName``. The selections there also give
the answers their shape (see ``trim``): plain dicts fit for a model, ids kept, amounts as
numbers next to their currency.

Reads are retried on 429/5xx as ``http.send`` does. A mutation is sent once: a timeout or a 5xx
may come after Saleor applied it, so what runs again is the executor, which looks before it
writes.
"""

from __future__ import annotations

import base64
import html
import json
import re
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any, TypedDict, cast

import httpx

from opshub.connectors.errors import ConnectorRequestError, ConnectorResponseError
from opshub.connectors.http import RetryPolicy, send
from opshub.connectors.saleor_wire import classify, load_operations
from opshub.credentials.models import Provider

Obj = dict[str, Any]
SALEOR = Provider.saleor
ORDER_STATUSES = ("UNFULFILLED", "PARTIALLY_FULFILLED", "FULFILLED", "CANCELED", "UNCONFIRMED",
                  "READY_TO_FULFILL", "READY_TO_CAPTURE")  # fmt: skip
MAX_PAGE = 100  # Saleor's cap on `first`
LOW_STOCK_PAGES = 20  # low_stock reads at most this many pages of 100 variants


class Page(TypedDict):
    items: list[Obj]
    next_cursor: str | None  # pass as ``after`` for the next page; None on the last one
    total_count: int | None


OPERATIONS = load_operations(Path(__file__).with_name("saleor.graphql"))


def trim(value: Any) -> Any:
    """A connection becomes the list of its nodes, an object with one field that field's value."""
    if isinstance(value, list):
        return [trim(v) for v in value]
    if isinstance(value, dict):
        if "edges" in value:
            return [trim(edge["node"]) for edge in value["edges"]]
        if len(value) == 1:
            return trim(next(iter(value.values())))
        return {key: trim(v) for key, v in value.items()}
    return value


def _one(value: Any) -> Obj | None:
    return cast("Obj | None", trim(value))


def _many(value: Any) -> list[Obj]:
    return cast("list[Obj]", trim(value))


def _page(connection: Obj) -> Page:
    info = connection["pageInfo"]
    return {
        "items": _many(connection),
        "next_cursor": info["endCursor"] if info["hasNextPage"] else None,
        "total_count": connection.get("totalCount"),
    }


def editorjs(text: str) -> str:
    """Plain text as the EditorJS JSON Saleor keeps descriptions in: one paragraph per block."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    blocks = [
        {"type": "paragraph", "data": {"text": html.escape(p).replace("\n", "<br>")}}
        for p in paragraphs
    ]
    return json.dumps({"time": int(time.time() * 1000), "blocks": blocks, "version": "2.24.3"})


def plain_text(description: Any) -> str:
    """The text of an EditorJS description without its markup; "" when there is none."""
    try:
        blocks = json.loads(description)["blocks"]
        texts = [b["data"]["text"] for b in blocks if isinstance(b["data"].get("text"), str)]
    except (TypeError, ValueError, KeyError, AttributeError):
        return ""
    lines = (re.sub(r"<br\s*/?>", "\n", t) for t in texts)
    return "\n\n".join(html.unescape(re.sub(r"<[^>]+>", "", t)) for t in lines)


def _is_global_id(value: str, type_name: str) -> bool:
    try:
        return base64.b64decode(value, validate=True).decode().startswith(f"{type_name}:")
    except ValueError:
        return False


def _filter(**values: Any) -> Obj | None:
    kept = {key: value for key, value in values.items() if value not in (None, "")}
    return kept or None


def _decimal(value: Decimal | None) -> str | None:
    return None if value is None else str(value)  # Saleor reads Decimal scalars from strings


class SaleorClient:
    """One tenant's shop: ``secret`` is ``{"url": ".../graphql/", "token": staff or app token}``."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        secret: dict[str, Any],
        policy: RetryPolicy = RetryPolicy(),
    ) -> None:
        self._http = http
        self._url = str(secret["url"])
        self._token = str(secret["token"])
        self._policy = policy

    async def _run(self, operation: str, variables: Obj | None = None) -> Obj:
        query = OPERATIONS[operation]
        variables = dict(variables or {})
        if "first" in variables:  # a model may ask for more than Saleor serves at once
            variables["first"] = min(max(int(variables["first"]), 1), MAX_PAGE)
        request = self._http.build_request(
            "POST",
            self._url,
            json={"query": query, "operationName": operation, "variables": variables},
            headers={"Authorization": f"Bearer {self._token}"},
        )
        once = replace(self._policy, attempts=1)
        policy = once if query.startswith("mutation") else self._policy
        response = await send(
            self._http, request, provider=SALEOR, classify=classify, policy=policy
        )
        data: Obj = response.json()["data"]  # classify passed only JSON holding data
        return data

    async def _mutate(self, operation: str, variables: Obj, result: str) -> Obj:
        """The payload's ``result``, trimmed; its ``errors`` raised as a ConnectorRequestError."""
        field = operation[0].lower() + operation[1:]
        payload = (await self._run(operation, variables)).get(field)
        if not isinstance(payload, dict):
            raise ConnectorResponseError(SALEOR, f"Saleor answered {field} with no result")
        if errors := payload.pop("errors", None):
            detail = "; ".join(
                f"{e['field'] + ': ' if e.get('field') else ''}{e.get('message')} ({e.get('code')})"
                for e in errors
            )
            raise ConnectorRequestError(SALEOR, f"Saleor refused {field}: {detail}")
        if (value := _one(payload.get(result))) is None:
            raise ConnectorResponseError(SALEOR, f"Saleor answered {field} with no {result}")
        return value

    # -- reads -----------------------------------------------------------------------------------
    async def search_products(
        self,
        *,
        search: str | None,
        channel: str,
        category: str | None = None,
        first: int = 10,
        after: str | None = None,
    ) -> Page:
        """Products listed in ``channel`` with its prices; variants with sku, stock per warehouse.
        ``category`` is a category id or slug."""
        categories = [await self._category_id(category)] if category else None
        variables = {
            "channel": channel,
            "search": search or None,
            "first": first,
            "after": after,
            "filter": _filter(categories=categories),
        }
        return _page((await self._run("SearchProducts", variables))["products"])

    async def get_product(
        self, *, id: str | None = None, slug: str | None = None, channel: str
    ) -> Obj | None:
        if not id and not slug:
            raise ConnectorRequestError(SALEOR, "give a product id or slug")
        variables = {"id": id, "slug": slug, "channel": channel}
        product = _one((await self._run("Product", variables))["product"])
        if product is not None:
            product["description"] = plain_text(product["description"])[:2000]
        return product

    async def _category_id(self, category: str) -> str:
        if _is_global_id(category, "Category"):
            return category
        found = (await self._run("CategoryBySlug", {"slug": category}))["category"]
        if found is None:
            raise ConnectorRequestError(
                SALEOR, f"no category with slug {category!r}: list_categories shows them"
            )
        return str(found["id"])

    async def list_categories(self, *, search: str | None, first: int = 20) -> list[Obj]:
        variables = {"filter": _filter(search=search), "first": first}
        return _many((await self._run("Categories", variables))["categories"])

    async def list_product_types(self, *, search: str | None, first: int = 20) -> list[Obj]:
        """A new product needs one; ``has_variants`` False: a single-variant type."""
        variables = {"filter": _filter(search=search), "first": first}
        return _many((await self._run("ProductTypes", variables))["productTypes"])

    async def list_channels(self) -> list[Obj]:
        return _many((await self._run("Channels"))["channels"] or [])

    async def list_warehouses(self, *, search: str | None = None, first: int = 20) -> list[Obj]:
        variables = {"filter": _filter(search=search), "first": first}
        return _many((await self._run("Warehouses", variables))["warehouses"])

    async def list_orders(
        self,
        *,
        status: str | None = None,
        search: str | None = None,
        channel: str | None = None,
        first: int = 10,
        after: str | None = None,
    ) -> Page:
        """Newest first. ``search`` matches whole terms: an order number or a full e-mail."""
        if status and status.upper() not in ORDER_STATUSES:
            raise ConnectorRequestError(
                SALEOR, f"unknown order status {status!r}: use one of {', '.join(ORDER_STATUSES)}"
            )
        statuses = [status.upper()] if status else None
        variables = {
            "filter": _filter(status=statuses, search=search),
            "channel": channel,
            "first": first,
            "after": after,
        }
        return _page((await self._run("Orders", variables))["orders"])

    async def unfulfilled_orders(self, *, channel: str | None, first: int = 20) -> list[Obj]:
        """Orders still waiting to ship, oldest first."""
        variables = {
            "filter": {"status": ["UNFULFILLED", "PARTIALLY_FULFILLED"]},
            "sortBy": {"field": "CREATED_AT", "direction": "ASC"},
            "channel": channel,
            "first": first,
        }
        return _page((await self._run("Orders", variables))["orders"])["items"]

    async def get_order(self, *, id: str) -> Obj | None:
        """Lines, addresses, fulfillments and the last 20 events (notes among them)."""
        order = _one((await self._run("Order", {"id": id}))["order"])
        if order is not None:
            order["events"] = order["events"][-20:]
        return order

    async def list_customers(
        self, *, search: str | None, first: int = 10, after: str | None = None
    ) -> Page:
        variables = {"filter": _filter(search=search), "first": first, "after": after}
        return _page((await self._run("Customers", variables))["customers"])

    async def list_vouchers(
        self, *, search: str | None, channel: str | None, first: int = 10, after: str | None = None
    ) -> Page:
        """With ``channel``, ``discount_value`` and ``currency`` are that channel's."""
        variables = {
            "filter": _filter(search=search),
            "channel": channel,
            "first": first,
            "after": after,
        }
        return _page((await self._run("Vouchers", variables))["vouchers"])

    async def low_stock(self, *, threshold: int, channel: str, first: int = 50) -> list[Obj]:
        """Tracked variants with at most ``threshold`` left to sell (stock minus allocated) in
        the channel's warehouses, lowest first."""
        found: list[Obj] = []
        after = None
        for _ in range(LOW_STOCK_PAGES):
            variables = {"channel": channel, "first": 100, "after": after}
            connection = (await self._run("LowStock", variables))["productVariants"]
            for variant in _many(connection):
                track = variant.pop("track_inventory")
                variant["available"] = sum(
                    s["quantity"] - s["allocated"] for s in variant["stocks"]
                )
                if track and variant["available"] <= threshold:
                    found.append(variant)
            if not connection["pageInfo"]["hasNextPage"]:
                break
            after = connection["pageInfo"]["endCursor"]
        return sorted(found, key=lambda v: (v["available"], v["sku"] or ""))[:first]

    # -- what the executors look up before they write ----------------------------------------------
    async def product_by_external_reference(self, reference: str) -> Obj | None:
        """``{"id", "name", "slug", "channel_ids"}``, or None."""
        variables = {"externalReference": reference}
        return _one((await self._run("ProductByExternalReference", variables))["product"])

    async def variant_by_sku(self, sku: str) -> Obj | None:
        """``{"id", "sku", "product_id", "channel_ids", "stocks"}``, or None."""
        return _one((await self._run("VariantBySku", {"sku": sku}))["productVariant"])

    async def voucher_by_code(self, code: str) -> Obj | None:
        for voucher in _many((await self._run("VoucherByCode", {"code": code}))["vouchers"]):
            if code in voucher["codes"]:
                return voucher
        return None

    async def order_events(self, *, order_id: str) -> list[Obj]:
        """``[{"id", "date", "type", "message"}]``, oldest first."""
        order = (await self._run("OrderEvents", {"id": order_id}))["order"]
        if order is None:
            raise ConnectorRequestError(SALEOR, f"Saleor has no order {order_id}")
        return _many(order["events"])

    # -- writes ------------------------------------------------------------------------------------
    async def create_product(
        self,
        *,
        product_type_id: str,
        category_id: str,
        name: str,
        slug: str,
        description: str = "",
        external_reference: str | None = None,
    ) -> Obj:
        """``{"id", "name", "slug", "channel_ids"}`` of the new product."""
        fields = _filter(
            productType=product_type_id,
            category=category_id,
            name=name,
            slug=slug,
            externalReference=external_reference,
            description=editorjs(description) if description.strip() else None,
        )
        return await self._mutate("ProductCreate", {"input": fields}, "product")

    async def update_product_channel_listing(
        self, *, product_id: str, channel_ids: list[str], published: bool = True
    ) -> Obj:
        """Lists the product in the channels (published, visible, for sale):
        ``{"id", "channel_ids"}`` with all its channels."""
        channels = [
            {
                "channelId": c,
                "isPublished": published,
                "visibleInListings": published,
                "isAvailableForPurchase": published,
            }
            for c in channel_ids
        ]
        variables = {"id": product_id, "input": {"updateChannels": channels}}
        return await self._mutate("ProductChannelListingUpdate", variables, "product")

    async def create_variant(
        self,
        *,
        product_id: str,
        sku: str,
        name: str,
        warehouse_id: str,
        quantity: int,
        track_inventory: bool = True,
    ) -> Obj:
        """The new variant with its stock, shaped as ``variant_by_sku``."""
        fields = {
            "product": product_id,
            "attributes": [],
            "sku": sku,
            "name": name,
            "trackInventory": track_inventory,
            "stocks": [{"warehouse": warehouse_id, "quantity": quantity}],
        }
        return await self._mutate("ProductVariantCreate", {"input": fields}, "productVariant")

    async def update_variant_channel_listing(
        self, *, variant_id: str, channel_ids: list[str], price: Decimal, cost_price: Decimal | None
    ) -> Obj:
        """Sets the variant's price (and cost) per channel: ``{"id", "prices": [...]}``."""
        listings = [
            _filter(channelId=c, price=_decimal(price), costPrice=_decimal(cost_price))
            for c in channel_ids
        ]
        variables = {"id": variant_id, "input": listings}
        return await self._mutate("ProductVariantChannelListingUpdate", variables, "variant")

    async def update_stock(self, *, variant_id: str, warehouse_id: str, quantity: int) -> Obj:
        """Sets (not adds to) a variant's stock in one warehouse: ``{"id", "sku", "stocks"}``."""
        variables = {
            "variantId": variant_id,
            "stocks": [{"warehouse": warehouse_id, "quantity": quantity}],
        }
        return await self._mutate("ProductVariantStocksUpdate", variables, "productVariant")

    async def create_voucher(
        self, *, name: str, code: str, discount_value_type: str, usage_limit: int | None = None
    ) -> Obj:
        """An entire-order voucher with one code, shaped as ``list_vouchers`` items."""
        fields = _filter(
            name=name,
            addCodes=[code],
            type="ENTIRE_ORDER",
            discountValueType=discount_value_type,
            usageLimit=usage_limit,
        )
        return await self._mutate("VoucherCreate", {"input": fields}, "voucher")

    async def update_voucher_channel_listing(
        self,
        *,
        voucher_id: str,
        channel_id: str,
        discount_value: Decimal,
        min_amount_spent: Decimal | None = None,
    ) -> Obj:
        listing = _filter(
            channelId=channel_id,
            discountValue=_decimal(discount_value),
            minAmountSpent=_decimal(min_amount_spent),
        )
        variables = {"id": voucher_id, "input": {"addChannels": [listing]}}
        return await self._mutate("VoucherChannelListingUpdate", variables, "voucher")

    async def add_order_note(self, *, order_id: str, message: str) -> Obj:
        """``{"id", "date", "type", "message"}`` of the note's order event."""
        variables = {"order": order_id, "input": {"message": message}}
        return await self._mutate("OrderNoteAdd", variables, "event")
