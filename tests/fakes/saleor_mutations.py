"""The fake Saleor's mutations (see ``saleor.py``): the writes opshub's actions send.

Each checks the caller's permission as Saleor does (``PermissionDenied``, HTTP 200), answers
bad input in the payload's ``errors { field message code }`` (nothing changes then) and
otherwise changes the seeded catalogue, so later reads see the change. Error messages follow
Django's model validation (*unconfirmed* wording; the codes are the schema's).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tests.fakes.saleor import Graph, Obj, _ctx, decode_id, global_id

Input = Mapping[str, Any]


def _error(field: str | None, message: str, code: str, **extra: Any) -> Obj:
    return {"field": field, "message": message, "code": code, **extra}


def _not_found(field: str, value: str | None) -> Obj:
    return _error(field, f"Couldn't resolve id: {value}.", "NOT_FOUND")


def _amount(value: Any) -> float:
    return float(Decimal(str(value)))


def _values(item: Input) -> list[str]:
    """The values of one ``AttributeValueInput``, whichever of its typed fields carries them."""
    values = list(item.get("values") or [])
    values.extend(item[f].get("value") or "" for f in ("dropdown", "swatch") if item.get(f))
    values.extend(choice.get("value") or "" for choice in item.get("multiselect") or [])
    typed = ("plainText", "numeric", "date", "dateTime")
    values.extend(str(item[f]) for f in typed if item.get(f) not in (None, ""))
    if item.get("boolean") is not None:
        values.append("true" if item["boolean"] else "false")
    return [v for v in values if v.strip()]


def _next_pk(records: list[Obj]) -> int:
    return max((r["pk"] for r in records), default=0) + 1


class Mutations:
    def __init__(self, graph: Graph) -> None:
        self.g = graph
        self.s = graph.s

    def root(self) -> Obj:
        return {
            "productCreate": self.product_create,
            "productChannelListingUpdate": self.product_channel_listing_update,
            "productVariantCreate": self.product_variant_create,
            "productVariantChannelListingUpdate": self.variant_channel_listing_update,
            "productVariantStocksUpdate": self.variant_stocks_update,
            "voucherCreate": self.voucher_create,
            "voucherChannelListingUpdate": self.voucher_channel_listing_update,
            "orderNoteAdd": self.order_note_add,
        }

    # -- lookups by global id -------------------------------------------------------------------
    @staticmethod
    def _find(records: list[Obj], type_name: str, id: str | None) -> Obj | None:
        kind, pk = decode_id(id or "")
        if kind != type_name:
            return None
        return next((r for r in records if str(r["pk"]) == pk), None)

    def _channel(self, id: str | None) -> Obj | None:
        return self._find(self.s.channels, "Channel", id)

    def _variant(self, id: str | None, sku: str | None) -> tuple[Obj, Obj] | None:
        kind, pk = decode_id(id or "")
        for p, v in self.g.variant_records():
            if (kind == "ProductVariant" and str(v["pk"]) == pk) or (sku and v["sku"] == sku):
                return p, v
        return None

    # -- products -------------------------------------------------------------------------------
    def product_create(self, info: Any, input: Input) -> Obj:
        _ctx(info).require("MANAGE_PRODUCTS")
        errors = []
        product_type = self._find(self.s.product_types, "ProductType", input["productType"])
        if product_type is None:
            errors.append(_not_found("productType", input["productType"]))
        category = self._find(self.s.categories, "Category", input.get("category"))
        if input.get("category") and category is None:
            errors.append(_not_found("category", input.get("category")))
        name = (input.get("name") or "").strip()
        if not name:
            errors.append(_error("name", "This field cannot be blank.", "REQUIRED"))
        slug = input.get("slug") or re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        if any(p["slug"] == slug for p in self.s.products):
            errors.append(_error("slug", "Product with this Slug already exists.", "UNIQUE"))
        reference = input.get("externalReference")
        if reference and any(p.get("external_reference") == reference for p in self.s.products):
            message = "Product with this External reference already exists."
            errors.append(_error("externalReference", message, "UNIQUE"))
        if errors or product_type is None:
            return {"product": None, "errors": errors}
        record = {
            "pk": _next_pk(self.s.products),
            "slug": slug,
            "name": name,
            "category": category["pk"] if category else None,
            "type": product_type["pk"],
            "channels": [],
            "listings": {},
            "variants": [],
            "created": datetime.now(UTC).isoformat(),
            "description": input.get("description"),
            "external_reference": reference,
            "unindexed": True,  # until the search-index task runs (index_search)
        }
        self.s.products.append(record)
        return {"product": self.g.product(record, None), "errors": []}

    def product_channel_listing_update(self, info: Any, id: str, input: Input) -> Obj:
        _ctx(info).require("MANAGE_PRODUCTS")
        product = self._find(self.s.products, "Product", id)
        if product is None:
            return {"product": None, "errors": [_not_found("id", id)]}
        updates = []
        for item in input.get("updateChannels") or []:
            channel = self._channel(item["channelId"])
            if channel is None:
                return {"product": None, "errors": [_not_found("channelId", item["channelId"])]}
            updates.append((item, channel))
        for item, channel in updates:
            if channel["slug"] not in product["channels"]:
                product["channels"].append(channel["slug"])
            flags = ("isPublished", "visibleInListings", "isAvailableForPurchase")
            product.setdefault("listings", {})[channel["slug"]] = {
                f: bool(item.get(f)) for f in flags
            }
        for removed in map(self._channel, input.get("removeChannels") or []):
            if removed is not None and removed["slug"] in product["channels"]:
                product["channels"].remove(removed["slug"])
        return {"product": self.g.product(product, None), "errors": []}

    def product_variant_create(self, info: Any, input: Input) -> Obj:
        _ctx(info).require("MANAGE_PRODUCTS")
        errors = []
        product = self._find(self.s.products, "Product", input["product"])
        if product is None:
            errors.append(_not_found("product", input["product"]))
        sku = input.get("sku")
        if sku and any(v["sku"] == sku for _, v in self.g.variant_records()):
            errors.append(_error("sku", "Product variant with this SKU already exists.", "UNIQUE"))
        stocks: dict[int, int] = {}
        for stock in input.get("stocks") or []:
            warehouse = self._find(self.s.warehouses, "Warehouse", stock["warehouse"])
            if warehouse is None:
                errors.append(_not_found("stocks", stock["warehouse"]))
            elif stock["quantity"] < 0:
                errors.append(_error("stocks", "Quantity cannot be negative.", "INVALID"))
            else:
                stocks[warehouse["pk"]] = stock["quantity"]
        chosen: dict[int, list[str]] = {}
        if product is not None:
            chosen, attribute_errors = self._variant_attributes(product, input["attributes"])
            errors.extend(attribute_errors)
        if errors or product is None:
            return {"productVariant": None, "errors": errors}
        all_variants = [v for _, v in self.g.variant_records()]
        record = {
            "pk": _next_pk(all_variants),
            "sku": sku,
            "name": input.get("name") or sku or "",
            "prices": {},
            "costs": {},
            "stocks": stocks,
            "track": input.get("trackInventory", True),
            "external_reference": input.get("externalReference"),
            "attributes": chosen,
        }
        product["variants"].append(record)
        return {"productVariant": self.g.variant(product, record, None), "errors": []}

    def _variant_attributes(
        self, product: Obj, given: list[Input]
    ) -> tuple[dict[int, list[str]], list[Obj]]:
        """The values per attribute pk, or Saleor's errors: an attribute the product type does
        not assign to variants is INVALID, a required one without a value REQUIRED."""
        product_type = next(t for t in self.s.product_types if t["pk"] == product["type"])
        allowed = {
            a["pk"]: a for a in self.s.attributes if a["pk"] in product_type["variant_attributes"]
        }
        chosen: dict[int, list[str]] = {}
        for item in given:
            kind, pk = decode_id(item.get("id") or "")
            attribute = allowed.get(int(pk)) if kind == "Attribute" and pk.isdigit() else None
            if attribute is None:
                message = f"{item.get('id')} is not a variant attribute of this product type."
                return {}, [_error("attributes", message, "INVALID", attributes=[item.get("id")])]
            values = _values(item)
            if values:
                chosen[attribute["pk"]] = values
        missing = [
            global_id("Attribute", pk)
            for pk, a in allowed.items()
            if a["required"] and pk not in chosen
        ]
        if missing:
            message = "All required attributes must take a value."
            return {}, [_error("attributes", message, "REQUIRED", attributes=missing)]
        return chosen, []

    def variant_channel_listing_update(
        self, info: Any, input: list[Input], id: str | None = None, sku: str | None = None
    ) -> Obj:
        _ctx(info).require("MANAGE_PRODUCTS")
        found = self._variant(id, sku)
        if found is None:
            return {"variant": None, "errors": [_not_found("id", id or sku)]}
        product, variant = found
        errors, updates = [], []
        for item in input:
            channel = self._channel(item["channelId"])
            if channel is None:
                errors.append(_not_found("channelId", item["channelId"]))
            elif channel["slug"] not in product["channels"]:
                message = f"Product not available in channels: {item['channelId']}."
                code = "PRODUCT_NOT_ASSIGNED_TO_CHANNEL"
                errors.append(_error("channelId", message, code, channels=[item["channelId"]]))
            else:
                updates.append((channel["slug"], item))
        if errors:
            return {"variant": None, "errors": errors}
        for slug, item in updates:
            variant["prices"][slug] = _amount(item["price"])
            if item.get("costPrice") is not None:
                variant.setdefault("costs", {})[slug] = _amount(item["costPrice"])
        return {"variant": self.g.variant(product, variant, None), "errors": []}

    def variant_stocks_update(
        self,
        info: Any,
        stocks: list[Input],
        variantId: str | None = None,
        sku: str | None = None,
    ) -> Obj:
        _ctx(info).require("MANAGE_PRODUCTS")
        found = self._variant(variantId, sku)
        if found is None:
            error = _not_found("variantId", variantId or sku)
            return {"productVariant": None, "errors": [error], "bulkStockErrors": [error]}
        product, variant = found
        errors, updates = [], {}
        for index, stock in enumerate(stocks):
            warehouse = self._find(self.s.warehouses, "Warehouse", stock["warehouse"])
            if warehouse is None:
                errors.append({**_not_found("warehouse", stock["warehouse"]), "index": index})
            elif stock["quantity"] < 0:
                message = "Quantity cannot be negative."
                errors.append(_error("quantity", message, "INVALID", index=index))
            else:
                updates[warehouse["pk"]] = stock["quantity"]
        if errors:
            return {"productVariant": None, "errors": errors, "bulkStockErrors": errors}
        variant["stocks"].update(updates)
        answer = self.g.variant(product, variant, None)
        return {"productVariant": answer, "errors": [], "bulkStockErrors": []}

    # -- discounts ------------------------------------------------------------------------------
    def voucher_create(self, info: Any, input: Input) -> Obj:
        _ctx(info).require("MANAGE_DISCOUNTS")
        pk = _next_pk(self.s.vouchers)
        codes = list(input.get("addCodes") or ([input["code"]] if input.get("code") else []))
        codes = codes or [f"FAKE{pk:04d}"]  # Saleor makes one up (unconfirmed format)
        taken = {c for v in self.s.vouchers for c in v.get("codes") or [v["code"]]}
        message = "Promo code already exists."
        errors = [
            _error("codes", message, "ALREADY_EXISTS", voucherCodes=[c])
            for c in codes
            if c in taken
        ]
        if not (input.get("name") or "").strip():
            errors.append(_error("name", "This field cannot be blank.", "REQUIRED"))
        if errors:
            return {"voucher": None, "errors": errors}
        record = {
            "pk": pk,
            "name": input["name"],
            "code": codes[0],
            "codes": codes,
            "type": input.get("type") or "ENTIRE_ORDER",
            "value_type": input.get("discountValueType") or "FIXED",
            "values": {},
            "min_spent": {},
            "usage_limit": input.get("usageLimit"),
            "used": 0,
            "start": input.get("startDate") or datetime.now(UTC).isoformat(),
            "end": input.get("endDate"),
        }
        self.s.vouchers.append(record)
        return {"voucher": self.g.voucher(record, None), "errors": []}

    def voucher_channel_listing_update(self, info: Any, id: str, input: Input) -> Obj:
        _ctx(info).require("MANAGE_DISCOUNTS")
        voucher = self._find(self.s.vouchers, "Voucher", id)
        if voucher is None:
            return {"voucher": None, "errors": [_not_found("id", id)]}
        errors, updates = [], []
        for item in input.get("addChannels") or []:
            channel = self._channel(item["channelId"])
            value = item.get("discountValue")
            if channel is None:
                errors.append(_not_found("channelId", item["channelId"]))
            elif value is None:
                errors.append(_error("discountValue", "This field is required.", "REQUIRED"))
            elif voucher["value_type"] == "PERCENTAGE" and _amount(value) > 100:
                message = "Invalid percentage value."
                errors.append(_error("discountValue", message, "INVALID"))
            else:
                updates.append((channel["slug"], item))
        if errors:
            return {"voucher": None, "errors": errors}
        for slug, item in updates:
            voucher["values"][slug] = _amount(item["discountValue"])
            spent = item.get("minAmountSpent")
            voucher.setdefault("min_spent", {})[slug] = None if spent is None else _amount(spent)
        for removed in map(self._channel, input.get("removeChannels") or []):
            if removed is not None:
                voucher["values"].pop(removed["slug"], None)
        return {"voucher": self.g.voucher(voucher, None), "errors": []}

    # -- orders ---------------------------------------------------------------------------------
    def order_note_add(self, info: Any, order: str, input: Input) -> Obj:
        _ctx(info).require("MANAGE_ORDERS")
        record = self._find(self.s.orders, "Order", order)
        if record is None:
            error = _error("id", f"Couldn't resolve id: {order}.", "GRAPHQL_ERROR")
            return {"order": None, "event": None, "errors": [error]}
        message = input["message"].strip()
        if not message:
            error = _error("message", "Message can't be empty.", "REQUIRED")
            return {"order": None, "event": None, "errors": [error]}
        pk = max((e["pk"] for o in self.s.orders for e in o["events"]), default=0) + 1
        event = {"pk": pk, "type": "NOTE_ADDED", "message": message,
                 "date": datetime.now(UTC).isoformat()}  # fmt: skip
        record["events"].append(event)
        return {"order": self.g.order(record), "event": self.g.order_event(event), "errors": []}
