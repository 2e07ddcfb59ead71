"""Saleor 3.20 over GraphQL: the reads the e-commerce tools need and the writes the Saleor
action executors send.

Every operation is a named block of ``saleor.graphql``, loaded once; a request carries one of
them (with the fragments it spreads) and its ``operationName``. The selections there also give
the answers their shape (see ``trim``): plain dicts fit for a model, ids kept, amounts as
numbers next to their currency.

Reads are retried on 429/5xx (and on the HTTP 200 "Internal Server Error" Saleor answers to a
unique-key race) as ``http.send`` does. A mutation is sent once: a timeout or a 5xx may come
after Saleor applied it, so what runs again is the executor, which looks before it writes.

Saleor answers what the token may read: a field it may not is null with a PermissionDenied
error, and the rest stands. Such an answer is kept; ``withheld`` says which fields were
missing and which permission would show them. Channel slugs are checked against the shop's
channels (kept for ``CHANNELS_TTL`` seconds per shop and token) and global ids before
anything is sent: Saleor answers an unknown channel with an empty list, not an error.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any, TypedDict, cast

import httpx

from opshub.connectors.errors import (
    ConnectorAuthError,
    ConnectorRequestError,
    ConnectorResponseError,
)
from opshub.connectors.http import RetryPolicy, send
from opshub.connectors.saleor_wire import classify, load_operations, withheld_fields
from opshub.credentials.models import Provider

Obj = dict[str, Any]
SALEOR = Provider.saleor
ORDER_STATUSES = ("UNFULFILLED", "PARTIALLY_FULFILLED", "FULFILLED", "CANCELED", "UNCONFIRMED",
                  "READY_TO_FULFILL", "READY_TO_CAPTURE")  # fmt: skip
MAX_PAGE = 100  # Saleor's cap on `first`
LOW_STOCK_PAGES = 20  # low_stock reads at most this many pages of 100 variants
VOUCHER_PAGES = 50  # voucher_by_code reads at most this many pages of 100 search matches
CHANNELS_TTL = 300.0  # seconds a shop's channel list is trusted
# The attribute input types a proposal can fill, and the AttributeValueInput field of each.
ATTRIBUTE_FIELDS = {"DROPDOWN": "dropdown", "SWATCH": "swatch", "MULTISELECT": "multiselect",
                    "PLAIN_TEXT": "plainText", "NUMERIC": "numeric", "BOOLEAN": "boolean",
                    "DATE": "date"}  # fmt: skip
_channels: dict[tuple[str, str], tuple[float, list[Obj]]] = {}


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


def is_global_id(value: str, type_name: str) -> bool:
    try:
        return base64.b64decode(value, validate=True).decode().startswith(f"{type_name}:")
    except ValueError:
        return False


def require_id(value: str, type_name: str, source: str) -> str:
    """``value`` when it is a global id of ``type_name``; refused before it is sent otherwise."""
    if not is_global_id(value, type_name):
        raise ConnectorRequestError(
            SALEOR, f"{value!r} is not a Saleor {type_name} id: take it from {source}"
        )
    return value


def attribute_input(attribute: Obj) -> Obj:
    """``{"id", "input_type", "values"}`` as Saleor's AttributeValueInput for its input type."""
    field, values = ATTRIBUTE_FIELDS[attribute["input_type"]], attribute["values"]
    value: Any
    if field == "multiselect":
        value = [{"value": v} for v in values]
    elif field in ("dropdown", "swatch"):
        value = {"value": values[0]}
    elif field == "boolean":
        value = values[0].lower() in ("true", "yes", "1")
    else:
        value = values[0]
    return {"id": attribute["id"], field: value}


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
        # Fields Saleor withheld from this client's answers: "customers.orders needs ...".
        self.withheld: list[str] = []

    async def _run(self, operation: str, variables: Obj | None = None) -> Obj:
        """The answer's ``data``; an unknown token raised as such (ConnectorAuthError)."""
        before = len(self.withheld)
        try:
            data = await self._request(operation, variables)
        except ConnectorRequestError as exc:
            # Saleor takes an unknown token for no token: it is refused a permission, or asked
            # for a channel, rather than told that its token is unknown. Identity tells which.
            if "lacks a permission" in exc.message or "More than one channel" in exc.message:
                await self._check_identity()
            raise
        if len(self.withheld) > before:  # also what an unknown token reads: public fields only
            await self._check_identity()
        return data

    async def _check_identity(self) -> None:
        data = await self._request("Identity")
        if not (data.get("me") or data.get("app")):
            raise ConnectorAuthError(SALEOR, "Saleor does not recognise the token")

    async def _request(self, operation: str, variables: Obj | None = None) -> Obj:
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
        body = response.json()
        for note in withheld_fields(body.get("errors") or []):
            if note not in self.withheld:
                self.withheld.append(note)
        data: Obj = body["data"]  # classify passed only JSON holding data
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

    async def _known_channel(self, slug: str) -> str:
        """``slug`` when the shop has that channel; refused with the shop's channels if not."""
        key = (self._url, hashlib.sha256(self._token.encode()).hexdigest())
        cached = _channels.get(key)
        fresh = cached is not None and time.monotonic() - cached[0] < CHANNELS_TTL
        if fresh and cached is not None and any(c["slug"] == slug for c in cached[1]):
            return slug
        channels = await self.list_channels()  # a channel added since is found too
        now = time.monotonic()
        for stale in [k for k, (at, _) in _channels.items() if now - at >= CHANNELS_TTL]:
            del _channels[stale]
        _channels[key] = (now, channels)
        if not any(c["slug"] == slug for c in channels):
            known = ", ".join(f"'{c['slug']}' ({c['currency']})" for c in channels)
            raise ConnectorRequestError(
                SALEOR, f"no channel {slug!r}: the shop's channels are {known or 'none'}"
            )
        return slug

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
        ``category`` is a category id or slug. Saleor's search index lags behind new products,
        so a search that finds nothing also tries the words as a SKU and as a slug."""
        await self._known_channel(channel)
        categories = [await self._category_id(category)] if category else None
        variables = {
            "channel": channel,
            "search": search or None,
            "first": first,
            "after": after,
            "filter": _filter(categories=categories),
        }
        page = _page((await self._run("SearchProducts", variables))["products"])
        if search and not page["items"] and after is None and not category:
            page["items"] = await self._exact_products(search.strip(), channel)
        return page

    async def _exact_products(self, term: str, channel: str) -> list[Obj]:
        variant = await self.variant_by_sku(term)
        if variant is not None:
            found = await self.get_product(id=variant["product_id"], channel=channel)
        else:
            found = await self.get_product(slug=term, channel=channel)
        return [found] if found is not None else []

    async def get_product(
        self, *, id: str | None = None, slug: str | None = None, channel: str
    ) -> Obj | None:
        """By ``id`` if given, else by ``slug`` (Saleor refuses both at once)."""
        if id:
            variables = {"id": require_id(id, "Product", "shop_products"), "channel": channel}
        elif slug:
            variables = {"slug": slug, "channel": channel}
        else:
            raise ConnectorRequestError(SALEOR, "give a product id or slug")
        await self._known_channel(channel)
        product = _one((await self._run("Product", variables))["product"])
        if product is not None:
            product["description"] = plain_text(product["description"])[:2000]
        return product

    async def _category_id(self, category: str) -> str:
        if is_global_id(category, "Category"):
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
        """A new product needs one; ``has_variants`` False: a single-variant type. Each with
        the ``variant_attributes`` its variants take (``required`` ones must have a value;
        ``choices`` lists the values a DROPDOWN, SWATCH or MULTISELECT one offers)."""
        variables = {"filter": _filter(search=search), "first": first}
        return _many((await self._run("ProductTypes", variables))["productTypes"])

    async def get_product_type(self, id: str) -> Obj | None:
        variables = {"id": require_id(id, "ProductType", "shop_catalog(what='product_types')")}
        return _one((await self._run("ProductType", variables))["productType"])

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
        if channel:
            await self._known_channel(channel)
        variables = {
            "filter": _filter(status=statuses, search=search),
            "channel": channel,
            "first": first,
            "after": after,
        }
        return _page((await self._run("Orders", variables))["orders"])

    async def unfulfilled_orders(self, *, channel: str | None, first: int = 20) -> list[Obj]:
        """Orders still waiting to ship, oldest first."""
        if channel:
            await self._known_channel(channel)
        variables = {
            "filter": {"status": ["UNFULFILLED", "PARTIALLY_FULFILLED"]},
            "sortBy": {"field": "CREATED_AT", "direction": "ASC"},
            "channel": channel,
            "first": first,
        }
        return _page((await self._run("Orders", variables))["orders"])["items"]

    async def get_order(self, *, id: str) -> Obj | None:
        """Lines, addresses, fulfillments and the last 20 events (notes among them)."""
        variables = {"id": require_id(id, "Order", "shop_orders")}
        order = _one((await self._run("Order", variables))["order"])
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
        if channel:
            await self._known_channel(channel)
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
        await self._known_channel(channel)
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
        """``{"id", "name", "slug", "listings": [{"channel_id", "published"}]}``, or None."""
        variables = {"externalReference": reference}
        return _one((await self._run("ProductByExternalReference", variables))["product"])

    async def variant_by_sku(self, sku: str) -> Obj | None:
        """``{"id", "sku", "product_id", "channel_ids", "stocks"}``, or None."""
        return _one((await self._run("VariantBySku", {"sku": sku}))["productVariant"])

    async def voucher_by_code(self, code: str) -> Obj | None:
        """The voucher holding exactly ``code``: Saleor has no lookup by code, and its search
        matches substrings, so every page of matches is read (newest vouchers come last)."""
        after = None
        for _ in range(VOUCHER_PAGES):
            variables = {"code": code, "after": after}
            connection = (await self._run("VoucherByCode", variables))["vouchers"]
            for voucher in _many(connection):
                if code in voucher["codes"]:
                    return voucher
            if not connection["pageInfo"]["hasNextPage"]:
                return None
            after = connection["pageInfo"]["endCursor"]
        raise ConnectorResponseError(
            SALEOR, f"more than {VOUCHER_PAGES * MAX_PAGE} vouchers match {code!r}"
        )

    async def order_events(self, *, order_id: str) -> list[Obj]:
        """``[{"id", "date", "type", "message"}]``, oldest first."""
        variables = {"id": require_id(order_id, "Order", "shop_orders")}
        order = (await self._run("OrderEvents", variables))["order"]
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
        """The new product, unlisted, shaped as ``product_by_external_reference``."""
        fields = _filter(
            productType=require_id(product_type_id, "ProductType", "shop_catalog"),
            category=require_id(category_id, "Category", "shop_catalog"),
            name=name,
            slug=slug,
            externalReference=external_reference,
            description=editorjs(description) if description.strip() else None,
        )
        return await self._mutate("ProductCreate", {"input": fields}, "product")

    async def update_product_channel_listing(
        self, *, product_id: str, channel_ids: list[str], published: bool = True
    ) -> Obj:
        """Lists the product in the channels, published (visible, for sale) or hidden; shaped
        as ``product_by_external_reference``."""
        channels = [
            {
                "channelId": require_id(c, "Channel", "shop_catalog"),
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
        attributes: list[Obj] | None = None,
        track_inventory: bool = True,
    ) -> Obj:
        """The new variant with its stock, shaped as ``variant_by_sku``. ``attributes``:
        ``[{"id", "input_type", "values"}]``, one per variant attribute given a value."""
        warehouse = require_id(warehouse_id, "Warehouse", "shop_catalog")
        fields = {
            "product": require_id(product_id, "Product", "shop_products"),
            "attributes": [attribute_input(a) for a in attributes or []],
            "sku": sku,
            "name": name,
            "trackInventory": track_inventory,
            "stocks": [{"warehouse": warehouse, "quantity": quantity}],
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
        warehouse = require_id(warehouse_id, "Warehouse", "shop_catalog")
        variables = {
            "variantId": require_id(variant_id, "ProductVariant", "shop_products"),
            "stocks": [{"warehouse": warehouse, "quantity": quantity}],
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
            channelId=require_id(channel_id, "Channel", "shop_catalog"),
            discountValue=_decimal(discount_value),
            minAmountSpent=_decimal(min_amount_spent),
        )
        variables = {
            "id": require_id(voucher_id, "Voucher", "shop_vouchers"),
            "input": {"addChannels": [listing]},
        }
        return await self._mutate("VoucherChannelListingUpdate", variables, "voucher")

    async def add_order_note(self, *, order_id: str, message: str) -> Obj:
        """``{"id", "date", "type", "message"}`` of the note's order event."""
        variables = {
            "order": require_id(order_id, "Order", "shop_orders"),
            "input": {"message": message},
        }
        return await self._mutate("OrderNoteAdd", variables, "event")
