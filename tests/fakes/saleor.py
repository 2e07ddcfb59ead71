# ruff: noqa: ARG002, ARG005 - resolvers take graphql-core's (info, **args) whether used or not
"""A local fake of a Saleor 3.20 GraphQL API, executing against the real 3.20 schema.

Run it around a test and point a real GraphQL client at ``fake.url``::

    with FakeSaleorServer(tokens={"staff-token": ALL_PERMISSIONS}) as fake:
        headers = {"Authorization": "Bearer staff-token"}
        transport = HTTPXAsyncTransport(url=fake.url, headers=headers)
        async with gql.Client(transport=transport) as session:
            await session.execute(gql.GraphQLRequest(PRODUCTS, operation_name="Products"))
        assert fake.requests_for("Products")[0].token == "staff-token"

Every body is parsed and validated against ``fixtures/saleor-3.20.graphql`` and then executed
over a small seeded catalogue (see ``_seed``). The mutations opshub's actions send (products,
variants, listings, stocks, vouchers, order notes; ``saleor_mutations.py``) change that
catalogue, so later reads see them. Wire facts not in our specs are marked *unconfirmed* and
follow Saleor's Django view: an unparsable/invalid document answers HTTP 400 with
``{"errors": [{"message", "locations", "extensions": {"exception": {"code": "GraphQLError"}}}]}``,
a field the caller lacks permissions for is null with a ``PermissionDenied`` error (HTTP 200),
an unknown token is treated as no token (anonymous).

What a real Saleor 3.20.119 was seen to do (../shared/specs/saleor-operations.md, last part):

- ``tokenCreate`` gives a staff JWT that expires after ``staff_token_ttl`` seconds (300 in
  Saleor) and a refresh token for ``tokenRefresh``; the ``tokens`` given here behave as App
  tokens, which never expire. An expired JWT (or one in ``expired_tokens``) is anonymous for
  public fields and fails the others with ``"Signature has expired"`` (HTTP 200). An unknown
  or expired token asking for products or variants without a channel is refused with "More
  than one channel exists", not an auth error;
- ``product(id:, slug:)`` with both refuses the pair, a malformed global id is an error, and
  an unknown channel slug on products is an empty list (or null), not an error;
- the seeded "Audiobook" type requires a variant attribute: ``productVariantCreate`` without
  it fails ``REQUIRED``;
- a duplicate voucher code is ``ALREADY_EXISTS``; ``vouchers(filter: {search})`` matches
  substrings (``add_voucher`` seeds more), in creation order;
- products created here are found by ``search`` only after ``index_search()`` (Saleor's
  periodic index task); by id, slug, SKU or external reference at once;
- ``race_next(field)``: the next request resolving ``field`` does its work and answers HTTP 200
  ``{"errors": [{"message": "Internal Server Error"}]}``, as a unique-key race does;
- a nested field the token can't read is null with a ``PermissionDenied`` error at its path;
  the rest of the answer stands.

Rate limits and gateway errors are scripted with ``fail_next``; ``calls(field)`` counts how
often a root field (``"productCreate"``) was resolved, and ``delay_operation(field, s)`` holds
the answer back after the field was resolved (the shop did the work, the caller waits).
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import graphql
import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.server import BackgroundServer

# Saleor's published 3.20 schema, copied from ../shared/fixtures so that a clone tests on its own.
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "saleor-3.20.graphql"
ALL_PERMISSIONS = frozenset(
    {
        "MANAGE_PRODUCTS",
        "MANAGE_ORDERS",
        "MANAGE_USERS",
        "MANAGE_STAFF",
        "MANAGE_DISCOUNTS",
        "MANAGE_CHANNELS",
        "MANAGE_SHIPPING",
    }
)
MAX_PAGE = 100  # Saleor caps `first`/`last` at 100
STAFF_TOKEN_TTL = 300.0  # seconds a staff JWT from tokenCreate lasts in Saleor 3.20
JWT_SECRET = "fake-saleor-signing-key-0123456789abcdef"
INTERNAL_SERVER_ERROR = {"errors": [{"message": "Internal Server Error"}]}
GATEWAY_BODIES = {  # scripted non-GraphQL answers (a proxy in front of Saleor; unconfirmed)
    429: "Too Many Requests",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

Obj = dict[str, Any]


@cache
def saleor_schema() -> graphql.GraphQLSchema:
    """The real Saleor 3.20 schema (built once per process, ~1 s)."""
    return graphql.build_schema(SCHEMA_PATH.read_text())


def validate_operation(query: str) -> list[graphql.GraphQLError]:
    """Schema errors of a GraphQL document (syntax or validation); empty when it is valid."""
    try:
        document = graphql.parse(query)
    except graphql.GraphQLError as err:
        return [err]
    return graphql.validate(saleor_schema(), document)


def global_id(type_name: str, pk: int | str) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def decode_id(value: str) -> tuple[str, str]:
    try:
        type_name, _, pk = base64.b64decode(value, validate=True).decode().partition(":")
    except ValueError:
        return "", ""
    return type_name, pk


def resolve_id(value: str, type_name: str) -> str:
    """The pk of a global id of ``type_name``; a malformed one is Saleor's GraphQLError."""
    kind, pk = decode_id(value)
    if not pk:
        raise GraphQLInputError(f"Couldn't resolve id: {value}.")
    if kind != type_name:
        raise GraphQLInputError(f"Must receive a {type_name} id.")
    return pk


class PermissionDenied(Exception):
    def __init__(self, permissions: Iterable[str]) -> None:
        super().__init__(f"You need one of the following permissions: {', '.join(permissions)}")


class GraphQLInputError(Exception):
    """Raised by resolvers for Saleor's plain ``GraphQLError``s (bad arguments)."""


class ExpiredSignatureError(Exception):
    """PyJWT's, which Saleor reports by class name for an expired token (unconfirmed shape)."""


@dataclass(frozen=True)
class RecordedRequest:
    query: str | None
    variables: dict[str, Any] | None
    operation_name: str | None
    token: str | None  # from `Authorization: Bearer`
    headers: dict[str, str]  # lower-cased names
    at: float  # time.monotonic() on arrival


@dataclass(frozen=True)
class Failure:
    status: int
    retry_after: float | None = None
    body: Any = None  # JSON body, or text; None: the default for the status
    headers: dict[str, str] = field(default_factory=dict)


def _money(amount: float, currency: str) -> Obj:
    return {"__typename": "Money", "amount": round(amount, 2), "currency": currency}


def _taxed(amount: float, currency: str) -> Obj:
    money = _money(amount, currency)
    return {
        "__typename": "TaxedMoney",
        "gross": money,
        "net": money,
        "tax": _money(0, currency),
        "currency": currency,
    }


def _country(code: str) -> Obj:
    names = {"US": "United States of America", "PL": "Poland", "DE": "Germany"}
    return {"code": code, "country": names.get(code, code), "vat": None}


def _address(
    pk: int, first: str, last: str, street: str, city: str, code: str, country: str
) -> Obj:
    return {
        "__typename": "Address",
        "id": global_id("Address", pk),
        "metadata": [],
        "privateMetadata": [],
        "firstName": first,
        "lastName": last,
        "companyName": "",
        "streetAddress1": street,
        "streetAddress2": "",
        "city": city,
        "cityArea": "",
        "postalCode": code,
        "country": _country(country),
        "countryArea": "",
        "phone": "",
        "isDefaultShippingAddress": None,
        "isDefaultBillingAddress": None,
    }


@dataclass
class Catalogue:
    """The seeded store; plain records, turned into GraphQL objects per request."""

    channels: list[Obj]
    warehouses: list[Obj]
    categories: list[Obj]
    product_types: list[Obj]
    products: list[Obj]
    customers: list[Obj]
    orders: list[Obj]
    vouchers: list[Obj]
    attributes: list[Obj]


def _seed() -> Catalogue:
    created = "2026-10-01T09:00:00+00:00"
    channels = [
        {"pk": 1, "slug": "default-channel", "name": "Default Channel", "currency": "USD",
         "country": "US"},
        {"pk": 2, "slug": "channel-pln", "name": "Channel-PLN", "currency": "PLN", "country": "PL"},
    ]  # fmt: skip
    warehouses = [
        {"pk": 1, "slug": "americas", "name": "Americas", "channels": ["default-channel"],
         "address": _address(101, "", "", "1 Dock Rd", "NEW YORK", "10001", "US")},
        {"pk": 2, "slug": "europe", "name": "Europe",
         "channels": ["default-channel", "channel-pln"],
         "address": _address(102, "", "", "Prosta 1", "WARSZAWA", "00-001", "PL")},
    ]  # fmt: skip
    categories = [
        {"pk": 1, "slug": "apparel", "name": "Apparel", "parent": None},
        {"pk": 2, "slug": "t-shirts", "name": "T-shirts", "parent": 1},
        {"pk": 3, "slug": "accessories", "name": "Accessories", "parent": None},
    ]
    attributes = [
        {"pk": 1, "slug": "size", "name": "Size", "input_type": "DROPDOWN", "required": False,
         "choices": ["S", "M", "L"]},
        {"pk": 2, "slug": "audiobook-format", "name": "Audiobook format",
         "input_type": "DROPDOWN", "required": True, "choices": ["MP3", "FLAC", "CD"]},
        {"pk": 3, "slug": "narrator", "name": "Narrator", "input_type": "PLAIN_TEXT",
         "required": False, "choices": []},
    ]  # fmt: skip
    product_types = [
        {"pk": 1, "slug": "t-shirt", "name": "T-shirt", "has_variants": True,
         "variant_attributes": [1]},
        {"pk": 2, "slug": "simple", "name": "Simple", "has_variants": False,
         "variant_attributes": []},
        {"pk": 3, "slug": "audiobook", "name": "Audiobook", "has_variants": True,
         "variant_attributes": [2, 3]},
    ]  # fmt: skip
    # (pk, slug, name, category, type, channels, [(sku, name, {channel: price}, {wh: qty})])
    rows = [
        (1, "monospace-tee", "Monospace Tee", 2, 1, ("default-channel", "channel-pln"),
         [("MONO-S", "S", {"default-channel": 20.0, "channel-pln": 80.0}, {1: 12, 2: 5}),
          ("MONO-M", "M", {"default-channel": 20.0, "channel-pln": 80.0}, {1: 0, 2: 3})]),
        (2, "dash-force-tee", "Dash Force Tee", 2, 1, ("default-channel",),
         [("DASH-M", "M", {"default-channel": 18.5}, {1: 40})]),
        (3, "blue-hoodie", "Blue Hoodie", 1, 1, ("default-channel", "channel-pln"),
         [("HOOD-M", "M", {"default-channel": 45.0, "channel-pln": 180.0}, {1: 7, 2: 9}),
          ("HOOD-L", "L", {"default-channel": 47.0, "channel-pln": 188.0}, {2: 0})]),
        (4, "leather-belt", "Leather Belt", 3, 2, ("default-channel",),
         [("BELT-1", "Leather Belt", {"default-channel": 30.0}, {1: 25})]),
        (5, "canvas-cap", "Canvas Cap", 3, 2, ("default-channel", "channel-pln"),
         [("CAP-1", "Canvas Cap", {"default-channel": 15.0, "channel-pln": 60.0}, {2: 50})]),
    ]  # fmt: skip
    products, variant_pk = [], 0
    for pk, slug, name, category, ptype, listed, variants in rows:
        product_variants = []
        for sku, vname, prices, stocks in variants:
            variant_pk += 1
            product_variants.append(
                {"pk": variant_pk, "sku": sku, "name": vname, "prices": prices, "stocks": stocks}
            )
        products.append(
            {"pk": pk, "slug": slug, "name": name, "category": category, "type": ptype,
             "channels": list(listed), "variants": product_variants, "created": created,
             "description": json.dumps({"blocks": [{"type": "paragraph",
                                                    "data": {"text": f"{name}."}}]})}
        )  # fmt: skip
    customers = [
        {"pk": 1, "email": "alice@example.com", "first": "Alice", "last": "Archer",
         "address": _address(201, "Alice", "Archer", "5 Elm St", "BOSTON", "02108", "US")},
        {"pk": 2, "email": "bob@example.com", "first": "Bob", "last": "Baker",
         "address": _address(202, "Bob", "Baker", "Długa 7", "KRAKÓW", "30-001", "PL")},
        {"pk": 3, "email": "carol@example.com", "first": "Carol", "last": "Chen", "address": None},
    ]  # fmt: skip
    orders = [
        {"pk": 1, "number": "1", "customer": 1, "channel": "default-channel",
         "status": "UNFULFILLED", "payment": "FULLY_CHARGED",
         "created": "2026-10-02T10:00:00+00:00", "lines": [("MONO-S", 2, 0), ("BELT-1", 1, 0)]},
        {"pk": 2, "number": "2", "customer": 2, "channel": "channel-pln",
         "status": "FULFILLED", "payment": "FULLY_CHARGED",
         "created": "2026-10-03T11:00:00+00:00", "lines": [("HOOD-M", 1, 1)]},
        {"pk": 3, "number": "3", "customer": 1, "channel": "default-channel",
         "status": "CANCELED", "payment": "NOT_CHARGED",
         "created": "2026-10-04T12:00:00+00:00", "lines": [("CAP-1", 3, 0)]},
    ]  # fmt: skip
    for order in orders:
        order["events"] = [{"pk": order["pk"] * 100, "type": "PLACED", "date": order["created"]}]
    vouchers = [
        {"pk": 1, "name": "Welcome 10%", "code": "WELCOME10", "type": "ENTIRE_ORDER",
         "value_type": "PERCENTAGE", "values": {"default-channel": 10.0, "channel-pln": 10.0},
         "usage_limit": None, "used": 4, "start": "2026-01-01T00:00:00+00:00", "end": None},
        {"pk": 2, "name": "Five off", "code": "FIVEOFF", "type": "ENTIRE_ORDER",
         "value_type": "FIXED", "values": {"default-channel": 5.0}, "usage_limit": 100,
         "used": 0, "start": "2026-10-01T00:00:00+00:00", "end": "2026-12-31T23:59:59+00:00"},
    ]  # fmt: skip
    return Catalogue(
        channels,
        warehouses,
        categories,
        product_types,
        products,
        customers,
        orders,
        vouchers,
        attributes,
    )


class Context:
    """Per request: the caller's permissions and the catalogue."""

    def __init__(
        self,
        store: Catalogue,
        permissions: frozenset[str] | None,
        expired: bool = False,
        identity: str | None = None,
    ) -> None:
        self.store = store
        self.permissions = permissions  # None: anonymous
        self.expired = expired
        self.identity = identity  # "app", a staff user's e-mail, or None: anonymous
        self.resolved: list[str] = []  # root fields, in order

    def require(self, *needed: str) -> None:
        """Any one of ``needed`` (none given: any authenticated staff user/app)."""
        if self.expired:
            raise ExpiredSignatureError("Signature has expired")
        if self.permissions is None or (needed and not self.permissions & set(needed)):
            raise PermissionDenied(needed or ("AUTHENTICATED_STAFF_USER", "AUTHENTICATED_APP"))

    def require_channel(self, channel: str | None) -> None:
        """A caller Saleor does not know must name a channel when the shop has several."""
        if channel is None and self.permissions is None and len(self.store.channels) > 1:
            if self.expired:
                raise ExpiredSignatureError("Signature has expired")
            raise GraphQLInputError("More than one channel exists. Specify which channel to use.")


def _ctx(info: graphql.GraphQLResolveInfo) -> Context:
    ctx: Context = info.context
    return ctx


def _cursor(index: int) -> str:
    return base64.b64encode(f"arrayconnection:{index}".encode()).decode()


def _connection(
    items: list[Any], to_node: Callable[[Any], Obj], first: int | None, after: str | None, name: str
) -> Obj:
    """A Relay connection over ``items``; Saleor insists on ``first`` (no ``last`` here)."""
    if first is None:
        raise GraphQLInputError(
            f"You must provide a `first` or `last` value to properly paginate the `{name}` "
            "connection."
        )
    if first < 0 or first > MAX_PAGE:
        raise GraphQLInputError(
            f"Requesting {first} records on the `{name}` connection exceeds the `first` limit "
            f"of {MAX_PAGE} records."
        )
    start = 0
    if after:
        try:
            start = int(base64.b64decode(after).decode().rpartition(":")[2]) + 1
        except ValueError as err:
            raise GraphQLInputError("Received cursor is invalid.") from err
    page = items[start : start + first]
    edges = [{"cursor": _cursor(start + i), "node": to_node(x)} for i, x in enumerate(page)]
    return {
        "edges": edges,
        "pageInfo": {
            "hasNextPage": start + first < len(items),
            "hasPreviousPage": start > 0,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
        "totalCount": len(items),
    }


def _pks(ids: Iterable[str] | None, type_name: str) -> set[str] | None:
    if ids is None:
        return None
    return {pk for t, pk in map(decode_id, ids) if t == type_name}


def _sorted(items: list[Obj], sort_by: Mapping[str, Any] | None, keys: dict[str, str]) -> list[Obj]:
    if not sort_by or sort_by.get("field") not in keys:
        return items
    key = keys[sort_by["field"]]
    return sorted(items, key=lambda r: r[key], reverse=sort_by.get("direction") == "DESC")


class Graph:
    """Turns catalogue records into GraphQL objects (dicts; callables take ``(info, **args)``)."""

    def __init__(self, store: Catalogue) -> None:
        self.s = store

    # -- lookups ---------------------------------------------------------------------------------
    def channel_record(self, slug: str | None) -> Obj | None:
        if slug is None:
            return None
        for c in self.s.channels:
            if c["slug"] == slug:
                return c
        raise GraphQLInputError(f"Channel with '{slug}' slug does not exist.")

    def listing_channel(self, slug: str | None) -> Obj | None:
        """Products and variants: an unknown slug is a channel that lists nothing, no error."""
        if slug is None:
            return None
        known = next((c for c in self.s.channels if c["slug"] == slug), None)
        return known or {"pk": 0, "slug": slug, "currency": "USD", "unknown": True}

    @staticmethod
    def shown(info: Any, p: Obj, chan: Obj | None) -> bool:
        """Staff with MANAGE_PRODUCTS see every product; shoppers only those published in the
        channel."""
        if (_ctx(info).permissions or frozenset()) & {"MANAGE_PRODUCTS"}:
            return True
        listing = p.get("listings", {}).get(chan["slug"], {}) if chan else {}
        return (
            chan is not None and chan["slug"] in p["channels"] and listing.get("isPublished", True)
        )

    def variant_records(self) -> list[tuple[Obj, Obj]]:
        return [(p, v) for p in self.s.products for v in p["variants"]]

    # -- objects ---------------------------------------------------------------------------------
    def channel(self, c: Obj) -> Obj:
        return {
            "__typename": "Channel",
            "id": global_id("Channel", c["pk"]),
            "metadata": [],
            "privateMetadata": [],
            "slug": c["slug"],
            "name": c["name"],
            "isActive": True,
            "currencyCode": c["currency"],
            "hasOrders": any(o["channel"] == c["slug"] for o in self.s.orders),
            "defaultCountry": _country(c["country"]),
            "warehouses": lambda info: [
                self.warehouse(w) for w in self.s.warehouses if c["slug"] in w["channels"]
            ],
        }

    def warehouse(self, w: Obj) -> Obj:
        return {
            "__typename": "Warehouse",
            "id": global_id("Warehouse", w["pk"]),
            "metadata": [],
            "privateMetadata": [],
            "name": w["name"],
            "slug": w["slug"],
            "email": f"{w['slug']}@example.com",
            "isPrivate": False,
            "address": w["address"],
            "companyName": "",
            "clickAndCollectOption": "DISABLED",
            "externalReference": None,
            "shippingZones": lambda info, first=None, after=None, **_: _connection(
                [], lambda x: x, first if first is not None else 0, after, "shippingZones"
            ),
        }

    def category(self, c: Obj) -> Obj:
        level, parent = 0, c["parent"]
        while parent is not None:
            level += 1
            parent = next(x for x in self.s.categories if x["pk"] == parent)["parent"]

        def children(
            info: Any, first: int | None = None, after: str | None = None, **_: Any
        ) -> Obj:
            kids = [x for x in self.s.categories if x["parent"] == c["pk"]]
            return _connection(kids, self.category, first, after, "children")

        def products(
            info: Any,
            first: int | None = None,
            after: str | None = None,
            channel: str | None = None,
            **_: Any,
        ) -> Obj:
            chan = self.channel_record(channel)
            items = [
                p
                for p in self.s.products
                if p["category"] == c["pk"] and (chan is None or chan["slug"] in p["channels"])
            ]
            return _connection(items, lambda p: self.product(p, chan), first, after, "products")

        parent_record = next((x for x in self.s.categories if x["pk"] == c["parent"]), None)
        return {
            "__typename": "Category",
            "id": global_id("Category", c["pk"]),
            "metadata": [],
            "privateMetadata": [],
            "name": c["name"],
            "slug": c["slug"],
            "description": None,
            "level": level,
            "updatedAt": "2026-10-01T09:00:00+00:00",
            "parent": (lambda info: self.category(parent_record)) if parent_record else None,
            "children": children,
            "products": products,
            "backgroundImage": None,
        }

    def attribute(self, a: Obj) -> Obj:
        values = [
            {
                "__typename": "AttributeValue",
                "id": global_id("AttributeValue", f"{a['pk']}-{i}"),
                "name": name,
                "slug": name.lower(),
                "value": "",
                "inputType": a["input_type"],
                "reference": None,
                "file": None,
                "richText": None,
                "plainText": None,
                "boolean": None,
                "date": None,
                "dateTime": None,
                "externalReference": None,
            }
            for i, name in enumerate(a["choices"], start=1)
        ]
        choices = a["input_type"] in ("DROPDOWN", "MULTISELECT", "SWATCH")
        return {
            "__typename": "Attribute",
            "id": global_id("Attribute", a["pk"]),
            "metadata": [],
            "privateMetadata": [],
            "name": a["name"],
            "slug": a["slug"],
            "inputType": a["input_type"],
            "entityType": None,
            "type": "PRODUCT_TYPE",
            "unit": None,
            "valueRequired": a["required"],
            "visibleInStorefront": True,
            "filterableInDashboard": True,
            "withChoices": choices,
            "externalReference": None,
            "choices": (
                lambda info, first=None, after=None, **_: _connection(
                    values, lambda x: x, first, after, "choices"
                )
            )
            if choices
            else None,
        }

    def selected_attributes(self, v: Obj) -> list[Obj]:
        chosen: dict[int, list[str]] = v.get("attributes", {})
        return [
            {
                "__typename": "SelectedAttribute",
                "attribute": self.attribute(a),
                "values": [
                    {**self.attribute_value(a, value), "plainText": value}
                    if a["input_type"] == "PLAIN_TEXT"
                    else self.attribute_value(a, value)
                    for value in chosen[a["pk"]]
                ],
            }
            for a in self.s.attributes
            if a["pk"] in chosen
        ]

    @staticmethod
    def attribute_value(a: Obj, value: str) -> Obj:
        return {
            "__typename": "AttributeValue",
            "id": global_id("AttributeValue", f"{a['pk']}-{value}"),
            "name": value,
            "slug": value.lower(),
            "value": "",
            "inputType": a["input_type"],
        }

    def product_type(self, pk: int) -> Obj:
        t = next(x for x in self.s.product_types if x["pk"] == pk)
        variant_attributes = [a for a in self.s.attributes if a["pk"] in t["variant_attributes"]]
        return {
            "variantAttributes": lambda info, **_: [self.attribute(a) for a in variant_attributes],
            "productAttributes": [],
            "__typename": "ProductType",
            "id": global_id("ProductType", t["pk"]),
            "metadata": [],
            "privateMetadata": [],
            "name": t["name"],
            "slug": t["slug"],
            "hasVariants": t["has_variants"],
            "isShippingRequired": True,
            "isDigital": False,
            "kind": "NORMAL",
        }

    def stock(self, p: Obj, v: Obj, wh_pk: int, qty: int) -> Obj:
        w = next(x for x in self.s.warehouses if x["pk"] == wh_pk)
        return {
            "__typename": "Stock",
            "id": global_id("Stock", f"{v['pk']}-{wh_pk}"),
            "warehouse": self.warehouse(w),
            "productVariant": lambda info: self.variant(p, v, None),
            "quantity": qty,
            "quantityAllocated": 0,
            "quantityReserved": 0,
        }

    def variant(self, p: Obj, v: Obj, chan: Obj | None) -> Obj:
        # With a channel: the stock in the channel's warehouses only.
        whs = {w["pk"] for w in self.s.warehouses if chan is None or chan["slug"] in w["channels"]}

        def stocks(info: Any, **_: Any) -> list[Obj]:
            _ctx(info).require("MANAGE_PRODUCTS", "MANAGE_ORDERS")
            return [self.stock(p, v, wh, q) for wh, q in v["stocks"].items() if wh in whs]

        def quantity_available(info: Any, **_: Any) -> int:
            return sum(q for wh, q in v["stocks"].items() if wh in whs)

        price = v["prices"].get(chan["slug"]) if chan else None
        listings = [
            {
                "__typename": "ProductVariantChannelListing",
                "id": global_id("ProductVariantChannelListing", f"{v['pk']}-{c['pk']}"),
                "channel": self.channel(c),
                "price": _money(v["prices"][c["slug"]], c["currency"]),
                "costPrice": (
                    _money(v["costs"][c["slug"]], c["currency"])
                    if v.get("costs", {}).get(c["slug"]) is not None
                    else None
                ),
                "preorderThreshold": None,
            }
            for c in self.s.channels
            if c["slug"] in v["prices"]
        ]
        return {
            "__typename": "ProductVariant",
            "id": global_id("ProductVariant", v["pk"]),
            "metadata": [],
            "privateMetadata": [],
            "name": v["name"],
            "sku": v["sku"],
            "product": lambda info: self.product(p, chan),
            "trackInventory": v.get("track", True),
            "quantityLimitPerCustomer": None,
            "attributes": lambda info, **_: self.selected_attributes(v),
            "created": p["created"],
            "updatedAt": p["created"],
            "channelListings": lambda info: listings,
            "externalReference": v.get("external_reference"),
            "quantityAvailable": quantity_available,
            "stocks": stocks,
            "pricing": (
                {
                    "__typename": "VariantPricingInfo",
                    "onSale": False,
                    "discount": None,
                    "price": _taxed(price, chan["currency"]),
                    "priceUndiscounted": _taxed(price, chan["currency"]),
                }
                if price is not None and chan is not None
                else None
            ),
        }

    def product(self, p: Obj, chan: Obj | None) -> Obj:
        category = next((c for c in self.s.categories if c["pk"] == p["category"]), None)
        pricing = None
        if chan is not None:
            prices = [
                v["prices"][chan["slug"]] for v in p["variants"] if chan["slug"] in v["prices"]
            ]
            if prices:
                cur = chan["currency"]
                price_range = {
                    "start": _taxed(min(prices), cur),
                    "stop": _taxed(max(prices), cur),
                }
                pricing = {
                    "__typename": "ProductPricingInfo",
                    "displayGrossPrices": True,
                    "onSale": False,
                    "discount": None,
                    "priceRange": price_range,
                    "priceRangeUndiscounted": price_range,
                }
        listings = [
            {
                "__typename": "ProductChannelListing",
                "id": global_id("ProductChannelListing", f"{p['pk']}-{c['pk']}"),
                "channel": self.channel(c),
                **{"isPublished": True, "visibleInListings": True, "isAvailableForPurchase": True},
                **p.get("listings", {}).get(c["slug"], {}),
                "availableForPurchaseAt": p["created"],
                "publishedAt": p["created"],
            }
            for c in self.s.channels
            if c["slug"] in p["channels"]
        ]

        def variants(info: Any) -> list[Obj]:
            return [
                self.variant(p, v, chan)
                for v in p["variants"]
                if chan is None or chan["slug"] in v["prices"]
            ]

        return {
            "__typename": "Product",
            "id": global_id("Product", p["pk"]),
            "metadata": [],
            "privateMetadata": [],
            "name": p["name"],
            "slug": p["slug"],
            "description": p["description"],
            "seoTitle": None,
            "seoDescription": None,
            "externalReference": p.get("external_reference"),
            "productType": self.product_type(p["type"]),
            "category": self.category(category) if category else None,
            "created": p["created"],
            "updatedAt": p["created"],
            "chargeTaxes": True,
            "channel": chan["slug"] if chan else None,
            "isAvailable": (lambda info, **_: True) if chan else None,
            "isAvailableForPurchase": True if chan else None,
            "availableForPurchaseAt": p["created"] if chan else None,
            "thumbnail": lambda info, **_: None,
            "attributes": [],
            "pricing": lambda info, **_: pricing,
            "variants": variants,
            "channelListings": lambda info: listings,
        }

    def order(self, o: Obj) -> Obj:
        chan = next(c for c in self.s.channels if c["slug"] == o["channel"])
        cur = chan["currency"]
        user = next(u for u in self.s.customers if u["pk"] == o["customer"])
        by_sku = {v["sku"]: (p, v) for p, v in self.variant_records()}
        lines, total = [], 0.0
        for i, (sku, qty, fulfilled) in enumerate(o["lines"], start=1):
            p, v = by_sku[sku]
            unit = v["prices"][o["channel"]]
            total += unit * qty
            lines.append(
                {
                    "__typename": "OrderLine",
                    "id": global_id("OrderLine", f"{o['pk']}-{i}"),
                    "metadata": [],
                    "privateMetadata": [],
                    "productName": p["name"],
                    "variantName": v["name"],
                    "productSku": sku,
                    "productVariantId": global_id("ProductVariant", v["pk"]),
                    "isShippingRequired": True,
                    "quantity": qty,
                    "quantityFulfilled": fulfilled,
                    "quantityToFulfill": qty - fulfilled,
                    "taxRate": 0.0,
                    "unitPrice": _taxed(unit, cur),
                    "undiscountedUnitPrice": _taxed(unit, cur),
                    "unitDiscount": _money(0, cur),
                    "unitDiscountValue": 0,
                    "totalPrice": _taxed(unit * qty, cur),
                    "undiscountedTotalPrice": _taxed(unit * qty, cur),
                    "translatedProductName": p["name"],
                    "translatedVariantName": v["name"],
                    "variant": lambda info, p=p, v=v: self.variant(p, v, chan),
                }
            )
        address = user["address"]
        return {
            "__typename": "Order",
            "id": global_id("Order", o["pk"]),
            "metadata": [],
            "privateMetadata": [],
            "number": o["number"],
            "created": o["created"],
            "updatedAt": o["created"],
            "status": o["status"],
            "statusDisplay": o["status"].replace("_", " ").title(),
            "paymentStatus": o["payment"],
            "paymentStatusDisplay": o["payment"].replace("_", " ").title(),
            "isPaid": o["payment"] == "FULLY_CHARGED",
            "userEmail": user["email"],
            "user": lambda info: self.user(user),
            "channel": self.channel(chan),
            "lines": lines,
            "total": _taxed(total, cur),
            "subtotal": _taxed(total, cur),
            "undiscountedTotal": _taxed(total, cur),
            "shippingPrice": _taxed(0, cur),
            "billingAddress": address,
            "shippingAddress": address,
            "fulfillments": [],
            "events": lambda info: [self.order_event(e) for e in o["events"]],
            "customerNote": "",
            "externalReference": None,
            "origin": "CHECKOUT",
        }

    def order_event(self, e: Obj) -> Obj:
        return {
            "__typename": "OrderEvent",
            "id": global_id("OrderEvent", e["pk"]),
            "date": e["date"],
            "type": e["type"],
            "message": e.get("message"),
            "user": None,
            "app": None,
        }

    def user(self, u: Obj) -> Obj:
        def orders(info: Any, first: int | None = None, after: str | None = None, **_: Any) -> Obj:
            _ctx(info).require("MANAGE_ORDERS")
            mine = [o for o in self.s.orders if o["customer"] == u["pk"]]
            return _connection(
                mine, self.order, first if first is not None else 100, after, "orders"
            )

        return {
            "__typename": "User",
            "id": global_id("User", u["pk"]),
            "metadata": [],
            "privateMetadata": [],
            "email": u["email"],
            "firstName": u["first"],
            "lastName": u["last"],
            "isStaff": False,
            "isActive": True,
            "isConfirmed": True,
            "addresses": [u["address"]] if u["address"] else [],
            "defaultShippingAddress": u["address"],
            "defaultBillingAddress": u["address"],
            "dateJoined": "2026-09-01T08:00:00+00:00",
            "updatedAt": "2026-09-01T08:00:00+00:00",
            "lastLogin": None,
            "note": None,
            "languageCode": "EN_US",
            "restrictedAccessToChannels": False,
            "externalReference": None,
            "orders": orders,
        }

    def voucher(self, v: Obj, chan: Obj | None) -> Obj:
        listings = [
            {
                "__typename": "VoucherChannelListing",
                "id": global_id("VoucherChannelListing", f"{v['pk']}-{c['pk']}"),
                "channel": self.channel(c),
                "discountValue": v["values"][c["slug"]],
                "currency": c["currency"],
                "minSpent": (
                    _money(v["min_spent"][c["slug"]], c["currency"])
                    if v.get("min_spent", {}).get(c["slug"]) is not None
                    else None
                ),
            }
            for c in self.s.channels
            if c["slug"] in v["values"]
        ]
        codes = [
            {
                "__typename": "VoucherCode",
                "id": global_id("VoucherCode", f"{v['pk']}-{i}"),
                "code": code,
                "used": v["used"] if i == 0 else 0,
                "isActive": True,
                "createdAt": v["start"],
            }
            for i, code in enumerate(v.get("codes") or [v["code"]])
        ]
        return {
            "__typename": "Voucher",
            "id": global_id("Voucher", v["pk"]),
            "metadata": [],
            "privateMetadata": [],
            "name": v["name"],
            "code": v["code"],
            "codes": lambda info, first=None, after=None, **_: _connection(
                codes, lambda x: x, first, after, "codes"
            ),
            "usageLimit": v["usage_limit"],
            "used": v["used"],
            "startDate": v["start"],
            "endDate": v["end"],
            "applyOncePerOrder": False,
            "applyOncePerCustomer": False,
            "singleUse": False,
            "onlyForStaff": False,
            "discountValueType": v["value_type"],
            "discountValue": v["values"].get(chan["slug"]) if chan else None,
            "currency": chan["currency"] if chan else None,
            "minSpent": None,
            "type": v["type"],
            "channelListings": listings,
            "products": None,
            "categories": None,
            "collections": None,
            "variants": None,
        }

    # -- Query root ------------------------------------------------------------------------------
    def root(self) -> Obj:
        return {
            "products": self.q_products,
            "product": self.q_product,
            "productVariant": self.q_product_variant,
            "productVariants": self.q_product_variants,
            "productType": self.q_product_type,
            "categories": self.q_categories,
            "category": self.q_category,
            "productTypes": self.q_product_types,
            "channels": self.q_channels,
            "channel": self.q_channel,
            "warehouses": self.q_warehouses,
            "warehouse": self.q_warehouse,
            "stocks": self.q_stocks,
            "orders": self.q_orders,
            "order": self.q_order,
            "customers": self.q_customers,
            "user": self.q_user,
            "vouchers": self.q_vouchers,
            "voucher": self.q_voucher,
            "me": self.q_me,
            "app": self.q_app,
        }

    def q_me(self, info: Any, **_: Any) -> Obj | None:
        """The staff user a staff JWT belongs to; None for an App token or anonymous."""
        context = _ctx(info)
        if context.identity is None or context.identity == "app":
            return None
        return {"id": global_id("User", 9000), "email": context.identity}

    def q_app(self, info: Any, **_: Any) -> Obj | None:
        """The App an App token belongs to; anonymous callers are refused, as in Saleor."""
        context = _ctx(info)
        context.require()
        return {"id": global_id("App", 1), "name": "opshub"} if context.identity == "app" else None

    def q_products(
        self,
        info: Any,
        first: int | None = None,
        after: str | None = None,
        channel: str | None = None,
        search: str | None = None,
        filter: Mapping[str, Any] | None = None,
        sortBy: Mapping[str, Any] | None = None,
        **_: Any,
    ) -> Obj:
        f = dict(filter or {})
        _ctx(info).require_channel(channel or f.get("channel"))
        chan = self.listing_channel(channel or f.get("channel"))
        items = [
            p
            for p in self.s.products
            if (chan is None or chan["slug"] in p["channels"]) and self.shown(info, p, chan)
        ]
        term = (search or f.get("search") or "").lower()
        if term:  # the search index: products created here only once index_search() ran
            items = [
                p
                for p in items
                if not p.get("unindexed")
                and (
                    term in p["name"].lower()
                    or term in p["slug"]
                    or any(term in (v["sku"] or "").lower() for v in p["variants"])
                )
            ]
        if (cats := _pks(f.get("categories"), "Category")) is not None:
            items = [p for p in items if str(p["category"]) in cats]
        if (types := _pks(f.get("productTypes"), "ProductType")) is not None:
            items = [p for p in items if str(p["type"]) in types]
        if (ids := _pks(f.get("ids"), "Product")) is not None:
            items = [p for p in items if str(p["pk"]) in ids]
        if f.get("slugs") is not None:
            items = [p for p in items if p["slug"] in f["slugs"]]
        if f.get("stockAvailability") is not None:
            in_stock = f["stockAvailability"] == "IN_STOCK"
            items = [
                p
                for p in items
                if any(sum(v["stocks"].values()) > 0 for v in p["variants"]) == in_stock
            ]
        items = _sorted(items, sortBy, {"NAME": "name", "CREATED_AT": "created", "DATE": "created"})
        return _connection(items, lambda p: self.product(p, chan), first, after, "products")

    def q_product(
        self,
        info: Any,
        id: str | None = None,
        slug: str | None = None,
        externalReference: str | None = None,
        channel: str | None = None,
        **_: Any,
    ) -> Obj | None:
        if id is not None and slug is not None:
            raise GraphQLInputError("Argument 'id' cannot be combined with 'slug'")
        _ctx(info).require_channel(channel)
        chan = self.listing_channel(channel)
        pk = resolve_id(id, "Product") if id else None
        ref = externalReference
        for p in self.s.products:
            if (
                (pk is not None and str(p["pk"]) == pk)
                or (slug is not None and p["slug"] == slug)
                or (ref is not None and p.get("external_reference") == ref)
            ):
                if (chan is None or chan["slug"] in p["channels"]) and self.shown(info, p, chan):
                    return self.product(p, chan)
        return None

    def q_product_variant(
        self,
        info: Any,
        id: str | None = None,
        sku: str | None = None,
        channel: str | None = None,
        **_: Any,
    ) -> Obj | None:
        _ctx(info).require_channel(channel)
        chan = self.listing_channel(channel)
        pk = resolve_id(id, "ProductVariant") if id else None
        for p, v in self.variant_records():
            if (pk is not None and str(v["pk"]) == pk) or (sku is not None and v["sku"] == sku):
                return self.variant(p, v, chan)
        return None

    def q_product_variants(
        self,
        info: Any,
        first: int | None = None,
        after: str | None = None,
        channel: str | None = None,
        ids: list[str] | None = None,
        filter: Mapping[str, Any] | None = None,
        **_: Any,
    ) -> Obj:
        _ctx(info).require_channel(channel)
        chan = self.listing_channel(channel)
        rows = [r for r in self.variant_records() if chan is None or chan["slug"] in r[1]["prices"]]
        if (pks := _pks(ids, "ProductVariant")) is not None:
            rows = [r for r in rows if str(r[1]["pk"]) in pks]
        if (skus := (filter or {}).get("sku")) is not None:
            rows = [r for r in rows if r[1]["sku"] in skus]
        return _connection(rows, lambda r: self.variant(*r, chan), first, after, "productVariants")

    def q_categories(
        self,
        info: Any,
        first: int | None = None,
        after: str | None = None,
        level: int | None = None,
        filter: Mapping[str, Any] | None = None,
        **_: Any,
    ) -> Obj:
        f = dict(filter or {})
        items = [self.category(c) for c in self.s.categories]
        if level is not None:
            items = [c for c in items if c["level"] == level]
        if term := (f.get("search") or "").lower():
            items = [c for c in items if term in c["name"].lower() or term in c["slug"]]
        if f.get("slugs") is not None:
            items = [c for c in items if c["slug"] in f["slugs"]]
        if f.get("ids") is not None:
            items = [c for c in items if c["id"] in f["ids"]]
        return _connection(items, lambda c: c, first, after, "categories")

    def q_category(
        self,
        info: Any,
        id: str | None = None,
        slug: str | None = None,
        **_: Any,
    ) -> Obj | None:
        for c in self.s.categories:
            if global_id("Category", c["pk"]) == id or c["slug"] == slug:
                return self.category(c)
        return None

    def q_product_type(self, info: Any, id: str, **_: Any) -> Obj | None:
        pk = resolve_id(id, "ProductType")
        found = next((t for t in self.s.product_types if str(t["pk"]) == pk), None)
        return self.product_type(found["pk"]) if found else None

    def q_product_types(
        self,
        info: Any,
        first: int | None = None,
        after: str | None = None,
        filter: Mapping[str, Any] | None = None,
        **_: Any,
    ) -> Obj:
        f = dict(filter or {})
        items = list(self.s.product_types)
        if term := (f.get("search") or "").lower():
            items = [t for t in items if term in t["name"].lower() or term in t["slug"]]
        return _connection(
            items, lambda t: self.product_type(t["pk"]), first, after, "productTypes"
        )

    def q_channels(self, info: Any, **_: Any) -> list[Obj]:
        _ctx(info).require()
        return [self.channel(c) for c in self.s.channels]

    def q_channel(
        self,
        info: Any,
        id: str | None = None,
        slug: str | None = None,
        **_: Any,
    ) -> Obj | None:
        for c in self.s.channels:
            if global_id("Channel", c["pk"]) == id or c["slug"] == slug:
                return self.channel(c)
        return None

    def q_warehouses(
        self,
        info: Any,
        first: int | None = None,
        after: str | None = None,
        filter: Mapping[str, Any] | None = None,
        **_: Any,
    ) -> Obj:
        _ctx(info).require("MANAGE_PRODUCTS", "MANAGE_ORDERS", "MANAGE_SHIPPING")
        f = dict(filter or {})
        items = list(self.s.warehouses)
        if term := (f.get("search") or "").lower():
            items = [w for w in items if term in w["name"].lower() or term in w["slug"]]
        if f.get("slugs") is not None:
            items = [w for w in items if w["slug"] in f["slugs"]]
        if (ids := _pks(f.get("ids"), "Warehouse")) is not None:
            items = [w for w in items if str(w["pk"]) in ids]
        if (chans := _pks(f.get("channels"), "Channel")) is not None:
            slugs = {c["slug"] for c in self.s.channels if str(c["pk"]) in chans}
            items = [w for w in items if slugs & set(w["channels"])]
        return _connection(items, self.warehouse, first, after, "warehouses")

    def q_warehouse(self, info: Any, id: str | None = None, **_: Any) -> Obj | None:
        _ctx(info).require("MANAGE_PRODUCTS", "MANAGE_ORDERS", "MANAGE_SHIPPING")
        for w in self.s.warehouses:
            if global_id("Warehouse", w["pk"]) == id:
                return self.warehouse(w)
        return None

    def q_stocks(
        self,
        info: Any,
        first: int | None = None,
        after: str | None = None,
        filter: Mapping[str, Any] | None = None,
        **_: Any,
    ) -> Obj:
        _ctx(info).require("MANAGE_PRODUCTS")
        f = dict(filter or {})
        rows = [(p, v, wh, q) for p, v in self.variant_records() for wh, q in v["stocks"].items()]
        if f.get("quantity") is not None:
            rows = [r for r in rows if r[3] == f["quantity"]]
        if term := (f.get("search") or "").lower():
            rows = [r for r in rows if term in r[0]["name"].lower() or term in r[1]["sku"].lower()]
        return _connection(rows, lambda r: self.stock(*r), first, after, "stocks")

    def q_orders(
        self,
        info: Any,
        first: int | None = None,
        after: str | None = None,
        channel: str | None = None,
        filter: Mapping[str, Any] | None = None,
        sortBy: Mapping[str, Any] | None = None,
        **_: Any,
    ) -> Obj:
        _ctx(info).require("MANAGE_ORDERS")
        f = dict(filter or {})
        chan = self.channel_record(channel)
        emails = {u["pk"]: u for u in self.s.customers}
        items = [o for o in self.s.orders if chan is None or o["channel"] == chan["slug"]]
        if f.get("status"):
            items = [o for o in items if o["status"] in f["status"]]
        if f.get("paymentStatus"):
            items = [o for o in items if o["payment"] in f["paymentStatus"]]
        if f.get("numbers") is not None:
            items = [o for o in items if o["number"] in f["numbers"]]
        if (ids := _pks(f.get("ids"), "Order")) is not None:
            items = [o for o in items if str(o["pk"]) in ids]
        if (chans := _pks(f.get("channels"), "Channel")) is not None:
            slugs = {c["slug"] for c in self.s.channels if str(c["pk"]) in chans}
            items = [o for o in items if o["channel"] in slugs]
        if term := (f.get("customer") or "").lower():
            items = [
                o
                for o in items
                if any(term in emails[o["customer"]][k].lower() for k in ("email", "first", "last"))
            ]
        if term := (f.get("search") or "").lower():  # whole terms: a number or a full e-mail
            items = [
                o for o in items if term in (o["number"], emails[o["customer"]]["email"].lower())
            ]
        items = _sorted(
            items,
            sortBy,
            {
                "NUMBER": "pk",
                "CREATED_AT": "created",
                "CREATION_DATE": "created",
                "PAYMENT": "payment",
            },
        )
        if not sortBy:
            items = sorted(items, key=lambda o: o["pk"], reverse=True)  # newest first
        return _connection(items, self.order, first, after, "orders")

    def q_order(self, info: Any, id: str | None = None, **_: Any) -> Obj | None:
        _ctx(info).require("MANAGE_ORDERS")
        pk = resolve_id(id, "Order") if id else None
        for o in self.s.orders:
            if str(o["pk"]) == pk:
                return self.order(o)
        return None

    def q_customers(
        self,
        info: Any,
        first: int | None = None,
        after: str | None = None,
        filter: Mapping[str, Any] | None = None,
        **_: Any,
    ) -> Obj:
        _ctx(info).require("MANAGE_USERS")
        f = dict(filter or {})
        items = list(self.s.customers)
        if term := (f.get("search") or "").lower():
            items = [
                u for u in items if any(term in u[k].lower() for k in ("email", "first", "last"))
            ]
        if (ids := _pks(f.get("ids"), "User")) is not None:
            items = [u for u in items if str(u["pk"]) in ids]
        return _connection(items, self.user, first, after, "customers")

    def q_user(
        self,
        info: Any,
        id: str | None = None,
        email: str | None = None,
        **_: Any,
    ) -> Obj | None:
        _ctx(info).require("MANAGE_USERS", "MANAGE_STAFF")
        for u in self.s.customers:
            if global_id("User", u["pk"]) == id or u["email"] == email:
                return self.user(u)
        return None

    def q_vouchers(
        self,
        info: Any,
        first: int | None = None,
        after: str | None = None,
        channel: str | None = None,
        query: str | None = None,
        filter: Mapping[str, Any] | None = None,
        **_: Any,
    ) -> Obj:
        _ctx(info).require("MANAGE_DISCOUNTS")
        f = dict(filter or {})
        chan = self.channel_record(channel)
        items = list(self.s.vouchers)
        if term := (query or f.get("search") or "").lower():
            items = [
                v
                for v in items
                if term in v["name"].lower()
                or any(term in c.lower() for c in v.get("codes") or [v["code"]])
            ]
        if f.get("discountType"):
            kinds = set(f["discountType"])
            items = [v for v in items if v["value_type"] in kinds or v["type"] in kinds]
        if (ids := _pks(f.get("ids"), "Voucher")) is not None:
            items = [v for v in items if str(v["pk"]) in ids]
        return _connection(items, lambda v: self.voucher(v, chan), first, after, "vouchers")

    def q_voucher(
        self,
        info: Any,
        id: str,
        channel: str | None = None,
        **_: Any,
    ) -> Obj | None:
        _ctx(info).require("MANAGE_DISCOUNTS")
        chan = self.channel_record(channel)
        for v in self.s.vouchers:
            if global_id("Voucher", v["pk"]) == id:
                return self.voucher(v, chan)
        return None


def _format_error(err: graphql.GraphQLError) -> Obj:
    """Saleor's error entry: graphql-core's, plus ``extensions.exception.code``."""
    formatted: Obj = dict(err.formatted)
    original = err.original_error
    code = type(original).__name__ if original is not None else "GraphQLError"
    if isinstance(original, GraphQLInputError):
        code = "GraphQLError"
    formatted.pop("extensions", None)
    formatted["extensions"] = {"exception": {"code": code}}
    return formatted


@dataclass(frozen=True)
class _Middleware:
    """graphql-core takes a plain function or an object with ``resolve``, not a bound method."""

    resolve: Callable[..., Any]


class FakeSaleorServer(BackgroundServer):
    """Saleor's GraphQL endpoint (``/graphql/``) on a local port; see the module docstring."""

    name = "fake-saleor"

    def __init__(
        self,
        tokens: Mapping[str, Iterable[str]] | Iterable[str] = ("staff-token",),
        expired_tokens: Iterable[str] = (),
        *,
        staff: Mapping[str, str] | None = None,
        staff_token_ttl: float = STAFF_TOKEN_TTL,
    ) -> None:
        """``tokens``: App tokens (they never expire), each with all permissions, or
        ``{token: perms}``; ``expired_tokens``: tokens answered as an expired JWT; ``staff``:
        ``{email: password}`` of staff users (all permissions) whose ``tokenCreate`` JWTs last
        ``staff_token_ttl`` seconds."""
        if isinstance(tokens, Mapping):
            self.tokens = {t: frozenset(p) for t, p in tokens.items()}
        else:
            self.tokens = dict.fromkeys(tokens, ALL_PERMISSIONS)
        self.expired_tokens = set(expired_tokens)
        self.staff = dict(staff or {"staff@example.com": "staff-password"})
        self.staff_token_ttl = staff_token_ttl
        self.store = _seed()
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._failures: deque[Failure] = deque()
        self._calls: Counter[str] = Counter()
        self._delays: dict[str, float] = {}
        self._races: Counter[str] = Counter()
        self._clock_offset = 0.0
        saleor_schema()  # build before serving, so the first request is not slow
        routes = [Route("/graphql/", self._graphql, methods=["POST"])]
        super().__init__(Starlette(routes=routes))

    @property
    def url(self) -> str:
        return f"{self.base_url}/graphql/"

    def fail_next(
        self,
        status: int = 429,
        *,
        retry_after: float | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """The next ``times`` requests answer ``status`` (before auth or parsing, as a proxy would).

        ``retry_after`` sets the ``Retry-After`` header (seconds). Without ``body``, 429 answers a
        text body like a proxy's, as do 502/503/504; other statuses a GraphQL-shaped
        ``{"errors": [...]}`` (unconfirmed shapes: our specs say nothing of Saleor's limits).
        """
        item = Failure(status, retry_after, body, dict(headers or {}))
        with self._lock:
            self._failures.extend([item] * times)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_for(self, operation_name: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.operation_name == operation_name]

    def calls(self, field: str) -> int:
        """How often the root field ``field`` (e.g. ``"productCreate"``) was resolved."""
        with self._lock:
            return self._calls[field]

    def delay_operation(self, field: str, seconds: float) -> None:
        """Hold back answers to requests that resolved ``field`` by ``seconds``, after resolving
        it: the shop has done the work when the caller gives up waiting."""
        with self._lock:
            self._delays[field] = seconds

    def race_next(self, field: str, times: int = 1) -> None:
        """The next ``times`` requests resolving ``field`` do their work and then answer HTTP 200
        ``{"errors": [{"message": "Internal Server Error"}]}``, as Saleor does when two creates
        of one unique value race (the other one won: what it wrote stays)."""
        with self._lock:
            self._races[field] += times

    def add_voucher(self, code: str, name: str | None = None) -> None:
        """One more entire-order voucher (5% off in the default channel)."""
        with self._lock:
            vouchers = self.store.vouchers
            vouchers.append(
                {"pk": max(v["pk"] for v in vouchers) + 1, "name": name or code, "code": code,
                 "codes": [code], "type": "ENTIRE_ORDER", "value_type": "PERCENTAGE",
                 "values": {"default-channel": 5.0}, "usage_limit": None, "used": 0,
                 "start": "2026-10-01T00:00:00+00:00", "end": None}
            )  # fmt: skip

    def index_search(self) -> None:
        """Saleor's periodic search-index task: products created since are found by search."""
        with self._lock:
            for product in self.store.products:
                product.pop("unindexed", None)

    def advance_clock(self, seconds: float) -> None:
        """Move the fake's clock on: staff JWTs expire by it."""
        with self._lock:
            self._clock_offset += seconds

    def _now(self) -> float:
        return time.time() + self._clock_offset

    def staff_jwt(self, email: str, kind: str = "access") -> str:
        """A JWT as ``tokenCreate`` signs it: ``access`` lasts ``staff_token_ttl`` seconds."""
        now = self._now()
        ttl = self.staff_token_ttl if kind == "access" else 30 * 24 * 3600
        claims = {"token": kind, "email": email, "iat": int(now), "exp": now + ttl,
                  "jti": uuid.uuid4().hex,
                  "iss": self.url}  # fmt: skip
        return jwt.encode(claims, JWT_SECRET, algorithm="HS256")

    @staticmethod
    def _claims(token: str) -> Obj:
        """A JWT's claims when this fake signed it; times are checked by the fake's clock."""
        options = {"verify_exp": False, "verify_iat": False, "verify_nbf": False}
        claims: Obj = jwt.decode(token, JWT_SECRET, algorithms=["HS256"], options=options)
        return claims

    def _caller(self, token: str | None) -> Context:
        """Who ``token`` is: an App, a staff user (by a live JWT) or anonymous."""
        if token is None:
            return Context(self.store, None)
        if token in self.expired_tokens:
            return Context(self.store, None, expired=True)
        if token in self.tokens:
            return Context(self.store, self.tokens[token], identity="app")
        try:
            claims = self._claims(token)
        except jwt.PyJWTError:
            return Context(self.store, None)  # not ours: Saleor treats an unknown token as none
        if claims.get("token") != "access" or claims.get("email") not in self.staff:
            return Context(self.store, None)
        if float(claims["exp"]) <= self._now():
            return Context(self.store, None, expired=True)
        return Context(self.store, ALL_PERMISSIONS, identity=str(claims["email"]))

    def _auth_root(self) -> Obj:
        """``tokenCreate`` and ``tokenRefresh``, which need the server's staff and clock."""

        def token_create(info: Any, email: str, password: str, **_: Any) -> Obj:
            if self.staff.get(email) != password:
                error = {"field": "email", "message": "Please, enter valid credentials",
                         "code": "INVALID_CREDENTIALS"}  # fmt: skip
                return {"token": None, "refreshToken": None, "errors": [error]}
            return {
                "token": self.staff_jwt(email),
                "refreshToken": self.staff_jwt(email, "refresh"),
                "csrfToken": None,
                "user": None,
                "errors": [],
            }

        def token_refresh(info: Any, refreshToken: str | None = None, **_: Any) -> Obj:
            try:
                claims = self._claims(refreshToken or "")
            except jwt.PyJWTError as err:
                error = {"field": "refreshToken", "message": str(err), "code": "JWT_INVALID_TOKEN"}
                return {"token": None, "errors": [error]}
            if claims.get("token") != "refresh" or float(claims["exp"]) <= self._now():
                error = {"field": "refreshToken", "message": "Signature has expired",
                         "code": "JWT_SIGNATURE_EXPIRED"}  # fmt: skip
                return {"token": None, "errors": [error]}
            return {"token": self.staff_jwt(claims["email"]), "user": None, "errors": []}

        return {"tokenCreate": token_create, "tokenRefresh": token_refresh}

    def reset(self) -> None:
        """Forget recorded requests, call counts, delays and scripted failures; re-seed."""
        with self._lock:
            self._requests.clear()
            self._failures.clear()
            self._calls.clear()
            self._delays.clear()
            self._races.clear()
            self._clock_offset = 0.0
            self.store = _seed()

    def _root_field(
        self, next_: Callable[..., Any], root: Any, info: graphql.GraphQLResolveInfo, **args: Any
    ) -> Any:
        """graphql-core middleware: counts root fields."""
        if info.path.prev is None:
            _ctx(info).resolved.append(info.field_name)
            with self._lock:
                self._calls[info.field_name] += 1
        return next_(root, info, **args)

    # -- HTTP -----------------------------------------------------------------------------------
    async def _graphql(self, request: Request) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        payload: dict[str, Any] = body if isinstance(body, dict) else {}
        variables = payload.get("variables")
        recorded = RecordedRequest(
            query=payload.get("query"),
            variables=variables if isinstance(variables, dict) else None,
            operation_name=payload.get("operationName"),
            token=token,
            headers=headers,
            at=time.monotonic(),
        )
        with self._lock:
            self._requests.append(recorded)
            failure = self._failures.popleft() if self._failures else None
        if failure is not None:
            return self._failure(failure)
        if not isinstance(body, dict):
            return self._bad_request("Unable to parse query.")
        query = recorded.query
        if not isinstance(query, str) or not query.strip():
            return self._bad_request("Must provide a query string.")
        errors = validate_operation(query)
        if errors:
            return JSONResponse({"errors": [_format_error(e) for e in errors]}, status_code=400)
        from tests.fakes.saleor_mutations import Mutations  # here: that module imports this one

        context = self._caller(token)
        graph = Graph(self.store)
        result = await graphql.graphql(
            saleor_schema(),
            query,
            root_value={**graph.root(), **Mutations(graph).root(), **self._auth_root()},
            context_value=context,
            variable_values=recorded.variables,
            operation_name=recorded.operation_name,
            middleware=[_Middleware(self._root_field)],
        )
        with self._lock:
            delay = max((self._delays.get(f, 0.0) for f in context.resolved), default=0.0)
            raced = next((f for f in context.resolved if self._races[f] > 0), None)
            if raced is not None:
                self._races[raced] -= 1
        if delay:
            await asyncio.sleep(delay)
        if raced is not None:
            return JSONResponse(INTERNAL_SERVER_ERROR)
        answer: Obj = {}
        if result.errors:
            answer["errors"] = [_format_error(e) for e in result.errors]
        if result.data is None and result.errors and not any(e.path for e in result.errors):
            return JSONResponse(answer, status_code=400)  # e.g. a bad variable or operationName
        answer["data"] = result.data
        return JSONResponse(answer)

    @staticmethod
    def _bad_request(message: str) -> Response:
        error = {"message": message, "extensions": {"exception": {"code": "GraphQLError"}}}
        return JSONResponse({"errors": [error]}, status_code=400)

    @staticmethod
    def _failure(failure: Failure) -> Response:
        headers = dict(failure.headers)
        if failure.retry_after is not None:
            headers["Retry-After"] = f"{failure.retry_after:g}"
        body = failure.body
        if body is None and failure.status in GATEWAY_BODIES:
            body = GATEWAY_BODIES[failure.status]
        if body is None:
            error = {
                "message": "Request failed.",
                "extensions": {"exception": {"code": "HTTPError"}},
            }
            body = {"errors": [error]}
        if isinstance(body, str):
            return PlainTextResponse(body, status_code=failure.status, headers=headers)
        return JSONResponse(body, status_code=failure.status, headers=headers)
