"""Local fakes of the connector APIs opshub calls, wire-exact per specs/external-apis.md.

One class per provider, each a real HTTP server on 127.0.0.1 (a free port, a background thread)::

    with FakeMetaGraph() as meta:
        meta.add_token("EAAB-valid-token", name="Acme Ads")
        settings = settings.model_copy(update={"meta_graph_url": meta.graph_url})
        ...
        assert meta.requests_for("me")[0].params["access_token"] == "EAAB-valid-token"

- ``FakeGoogleAds``: Google's OAuth token endpoint (``token_url``), Google Ads REST (``api_url``).
- ``FakeMetaGraph``: Graph / Marketing API (``graph_url``).
- ``FakeLinkedIn``: LinkedIn Marketing API (``api_url``, the ``/rest`` root).
- ``FakeAmazonCreators``: the Creators API token endpoints, Login with Amazon (``lwa_url``, 3.x
  credentials) and one region's Cognito pool (``cognito_url``, 2.x credentials).
- ``FakeSaleor``: a Saleor 3.20 ``/graphql/`` endpoint that validates every document against the
  real schema and executes it with graphql-core over ``root`` (plain dicts; callables for
  fields with arguments).

Each fake answers in the provider's order (route, request shape, credential), then takes the next
answer queued for the route, if any (``script(route, status, body)`` or the provider-shaped
``script_error``), else the default answer. ``requests`` / ``requests_for(route)`` hold what
arrived; ``reset()`` forgets requests and scripts and restores the constructor's configuration.
Routes are named in each class's ``ROUTES``; new endpoints (search, insights, ...) are a route and
an ``async def _<route>(self, req, **path_groups)`` handler.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import functools
import hashlib
import hmac
import inspect
import json
import re
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode

import graphql
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.saleor import SCHEMA_PATH as SALEOR_SCHEMA_PATH
from tests.fakes.server import BackgroundServer

GOOGLE_ADS_SCOPE = "https://www.googleapis.com/auth/adwords"
LWA_SCOPE = "creatorsapi::default"  # credential version 3.x, JSON body
COGNITO_SCOPE = "creatorsapi/default"  # credential version 2.x, form body


# -- shared machinery ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    route: str | None  # the fake's route name, None for an unknown route
    method: str
    path: str
    query: str  # raw query string
    params: dict[str, str]  # parsed query string (last value wins)
    headers: dict[str, str]  # lower-cased names
    content_type: str  # media type without parameters, "" if none
    body: Any  # parsed JSON, or a dict for a form body, else None
    raw: bytes
    at: float  # time.monotonic() on arrival

    @property
    def bearer(self) -> str | None:
        """The token of an ``Authorization: Bearer`` header, if any."""
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()


@dataclass(frozen=True)
class Scripted:
    """One queued answer for a route: status, JSON body (None: empty), headers, delay."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    latency: float = 0.0


class Reject(Exception):
    """Raised inside a handler: answer with this response."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.response = _respond(Scripted(status, body, dict(headers or {})))


def _respond(item: Scripted) -> Response:
    if item.body is None:
        return Response(status_code=item.status, headers=item.headers)
    if isinstance(item.body, str | bytes):
        return Response(item.body, item.status, item.headers, media_type="text/html")
    return JSONResponse(item.body, item.status, item.headers)


def _parse_body(content_type: str, raw: bytes) -> Any:
    if not raw:
        return None
    if content_type == "application/x-www-form-urlencoded":
        return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _token(prefix: str, size: int = 32) -> str:
    return prefix + secrets.token_urlsafe(size)


class FakeServer(BackgroundServer):
    """A real HTTP server for a provider fake; subclasses declare ``ROUTES`` and handlers."""

    name: ClassVar[str] = "fake"
    # (method, path regex with named groups, route name); the handler is ``_<route name>``.
    ROUTES: ClassVar[tuple[tuple[str, str, str], ...]] = ()

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._routes = [(m, re.compile(p), r) for m, p, r in self.ROUTES]
        self._queues: dict[str, deque[Scripted]] = {r: deque() for _, _, r in self.ROUTES}
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        super().__init__(Starlette(routes=[Route("/{path:path}", self._dispatch, methods=methods)]))
        self._restore()

    def _restore(self) -> None:
        """Set the configuration the constructor asked for (called again by ``reset``)."""

    # -- scripting and inspection ---------------------------------------------------------------
    def script(
        self,
        route: str,
        status: int = 200,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        latency: float = 0.0,
        times: int = 1,
    ) -> None:
        """Queue a raw answer for ``route`` (``times`` copies), used once the request passed
        the fake's checks. ``body``: JSON-able, a str (sent as text/html) or None (empty)."""
        if route not in self._queues:
            raise ValueError(f"unknown route {route!r}; one of {sorted(self._queues)}")
        item = Scripted(status, body, dict(headers or {}), latency)
        with self._lock:
            self._queues[route].extend([item] * times)

    def pending(self, route: str) -> int:
        with self._lock:
            return len(self._queues[route])

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_for(self, route: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.route == route]

    def reset(self) -> None:
        """Forget requests and scripted answers; restore the constructor's configuration."""
        with self._lock:
            self._requests.clear()
            for queue in self._queues.values():
                queue.clear()
        self._restore()

    # -- HTTP -----------------------------------------------------------------------------------
    async def _dispatch(self, request: Request) -> Response:
        raw = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        path, query = request.url.path, request.url.query
        route, groups = None, {}
        for method, pattern, name in self._routes:
            match = pattern.fullmatch(path)
            if match and method == request.method:
                route, groups = name, match.groupdict()
                break
        recorded = RecordedRequest(
            route,
            request.method,
            path,
            query,
            dict(parse_qsl(query, keep_blank_values=True)),
            headers,
            content_type,
            _parse_body(content_type, raw),
            raw,
            time.monotonic(),
        )
        with self._lock:
            self._requests.append(recorded)
        try:
            if route is None:
                return self._unknown_route(recorded)
            handler: Callable[..., Any] = getattr(self, f"_{route}")
            response: Response = await handler(recorded, **groups)
        except Reject as reject:
            return reject.response
        return response

    def _unknown_route(self, req: RecordedRequest) -> Response:
        return Response(f"Not Found: {req.method} {req.path}", 404, media_type="text/plain")

    async def _scripted(self, route: str) -> Response | None:
        """The next queued answer for ``route``, after its latency; None when none is queued."""
        with self._lock:
            queue = self._queues[route]
            item = queue.popleft() if queue else None
        if item is None:
            return None
        if item.latency:
            await asyncio.sleep(item.latency)
        return _respond(item)


@dataclass
class IssuedToken:
    """An access token a fake token endpoint handed out."""

    token: str
    client_id: str
    subject: str  # the refresh token (Google) or the credential version (Amazon)
    expires_at: float  # time.monotonic()
    scope: str

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.expires_at


# -- Google: OAuth token endpoint + Google Ads REST ----------------------------------------------

GOOGLE_UNAUTHENTICATED = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
    "or other valid authentication credential. "
    "See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
GOOGLE_MISSING_CREDENTIAL = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential. "
    "See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
GOOGLE_API_ERRORS: dict[int, tuple[str, str, dict[str, str], str]] = {
    # HTTP status -> (gRPC status, top message, GoogleAdsFailure errorCode, error message)
    400: (
        "INVALID_ARGUMENT",
        "Request contains an invalid argument.",
        {"requestError": "UNKNOWN"},
        "The request is invalid.",
    ),
    401: (
        "UNAUTHENTICATED",
        GOOGLE_UNAUTHENTICATED,
        {"authenticationError": "OAUTH_TOKEN_EXPIRED"},
        "Authentication of the request failed: the OAuth access token has expired.",
    ),
    403: (
        "PERMISSION_DENIED",
        "The caller does not have permission",
        {"authorizationError": "USER_PERMISSION_DENIED"},
        "User doesn't have permission to access customer. Note: If you're accessing a client "
        "customer, the manager's customer id must be set in the 'login-customer-id' header.",
    ),
    429: (
        "RESOURCE_EXHAUSTED",
        "Too many requests. Retry in 40 seconds.",
        {"quotaError": "RESOURCE_EXHAUSTED"},
        "Too many requests. Retry in 40 seconds.",
    ),
    500: (
        "INTERNAL",
        "Internal error encountered.",
        {"internalError": "INTERNAL_ERROR"},
        "An internal error has occurred.",
    ),
    503: ("UNAVAILABLE", "The service is currently unavailable.", {}, ""),
}


_CID = r"(?P<customer_id>\d+)"


@dataclass
class GoogleCustomer:
    """A seeded Google Ads account: campaigns by id, budgets by resource name, daily stats."""

    id: str
    currency: str
    refresh_tokens: set[str]  # whose access tokens may reach it
    campaigns: dict[str, dict[str, Any]] = field(default_factory=dict)
    budgets: dict[str, dict[str, Any]] = field(default_factory=dict)
    stats: list[dict[str, Any]] = field(default_factory=list)


class GaqlError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


_GAQL = re.compile(
    r"\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<resource>\w+)(?:\s+WHERE\s+(?P<where>.+?))?"
    r"(?:\s+ORDER\s+BY\s+(?P<order>.+?))?(?:\s+LIMIT\s+(?P<limit>\d+))?\s*",
    re.IGNORECASE | re.DOTALL,
)
_GAQL_CONDITION = re.compile(
    r"\s*(?P<field>\w+(?:\.\w+)+)\s+(?:BETWEEN\s+'(?P<low>[^']*)'\s+AND\s+'(?P<high>[^']*)'"
    r"|(?P<op>!=|>=|<=|=|>|<|NOT\s+IN|IN)\s+(?P<value>'[^']*'|\([^)]*\)|[\w.-]+))"
    r"\s*(?:AND\s+|$)",
    re.IGNORECASE,
)
_GAQL_ATTRIBUTES = frozenset(
    {
        "customer.id",
        "customer.currency_code",
        "customer.resource_name",
        "campaign.id",
        "campaign.name",
        "campaign.status",
        "campaign.resource_name",
        "campaign.campaign_budget",
        "campaign_budget.resource_name",
        "campaign_budget.amount_micros",
        "campaign_budget.period",
    }
)
_GAQL_DAILY = frozenset(
    {
        "metrics.impressions",
        "metrics.clicks",
        "metrics.cost_micros",
        "metrics.conversions",
        "segments.date",
    }
)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _camel_path(path: str) -> str:
    return ".".join(_camel(part) for part in path.split("."))


def _page_token(offset: int, scope: str) -> str:
    """An opaque page token, valid only for the query (``scope``) it was issued for."""
    return base64.urlsafe_b64encode(f"{scope}:{offset}".encode()).decode()


def _page_offset(token: str, scope: str) -> int | None:
    try:
        issued_for, _, offset = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        return int(offset) if issued_for == scope else None
    except ValueError:
        return None


def _gaql_conditions(where: str) -> list[tuple[str, str, Any]]:
    conditions: list[tuple[str, str, Any]] = []
    position = 0
    while position < len(where):
        match = _GAQL_CONDITION.match(where, position)
        if match is None:
            raise GaqlError("UNEXPECTED_INPUT", f"Error in WHERE clause near: {where[position:]}")
        position = match.end()
        if match["low"] is not None:
            conditions.append((match["field"], "BETWEEN", (match["low"], match["high"])))
            continue
        op, raw = " ".join(match["op"].upper().split()), match["value"]
        if op in ("IN", "NOT IN"):
            value: Any = [v.strip().strip("'") for v in raw.strip("()").split(",")]
        else:
            value = raw.strip("'")
        conditions.append((match["field"], op, value))
    return conditions


def _gaql_holds(row: dict[str, Any], field_name: str, op: str, value: Any) -> bool:
    actual = row[field_name]
    if op == "BETWEEN":
        return bool(value[0] <= str(actual) <= value[1])
    if op in ("IN", "NOT IN"):
        return (str(actual) in value) == (op == "IN")
    left: Any = str(actual)
    right: Any = value
    try:
        left, right = float(actual), float(value)
    except (TypeError, ValueError):
        pass
    return {
        "=": left == right,
        "!=": left != right,
        ">": left > right,
        "<": left < right,
        ">=": left >= right,
        "<=": left <= right,
    }[op]


def _gaql_facts(customer: GoogleCustomer, daily: bool) -> list[dict[str, Any]]:
    """Every row ``FROM campaign`` can see: one per campaign, or per campaign and day."""
    campaigns = {}
    for campaign_id, c in customer.campaigns.items():
        budget = customer.budgets[c["budget"]]
        campaigns[campaign_id] = {
            "customer.id": customer.id,
            "customer.currency_code": customer.currency,
            "customer.resource_name": f"customers/{customer.id}",
            "campaign.id": campaign_id,
            "campaign.name": c["name"],
            "campaign.status": c["status"],
            "campaign.resource_name": f"customers/{customer.id}/campaigns/{campaign_id}",
            "campaign.campaign_budget": c["budget"],
            "campaign_budget.resource_name": c["budget"],
            "campaign_budget.amount_micros": int(budget["amount_micros"]),
            "campaign_budget.period": budget["period"],
        }
    if not daily:
        return [campaigns[k] for k in sorted(campaigns, key=int)]
    rows = [
        {
            **campaigns[stat["campaign_id"]],
            "metrics.impressions": stat["impressions"],
            "metrics.clicks": stat["clicks"],
            "metrics.cost_micros": stat["cost_micros"],
            "metrics.conversions": float(stat["conversions"]),
            "segments.date": stat["date"],
        }
        for stat in customer.stats
    ]
    return sorted(rows, key=lambda r: (r["segments.date"], int(r["campaign.id"])))


def run_gaql(query: str, customer: GoogleCustomer) -> tuple[list[str], list[dict[str, Any]]]:
    """(selected fields, matching flat rows) of a query in the GAQL subset the fake knows."""
    match = _GAQL.fullmatch(query)
    if match is None:
        raise GaqlError("UNEXPECTED_END_OF_QUERY", "Error in query: expected SELECT ... FROM.")
    if match["resource"] != "campaign":
        raise GaqlError(
            "PROHIBITED_RESOURCE_TYPE_IN_FROM_CLAUSE",
            f"The fake answers FROM campaign only, not {match['resource']}.",
        )
    selected = [f.strip() for f in match["fields"].split(",")]
    conditions = _gaql_conditions(match["where"] or "")
    for name in [*selected, *(c[0] for c in conditions)]:
        if name not in _GAQL_ATTRIBUTES | _GAQL_DAILY:
            raise GaqlError("UNRECOGNIZED_FIELD", f"Unrecognized field in the query: '{name}'.")
    daily = any(f in _GAQL_DAILY for f in selected)
    if daily and "segments.date" not in selected:
        raise GaqlError("PROHIBITED_METRIC_IN_SELECT_OR_WHERE_CLAUSE", "Select segments.date.")
    dates = [op for name, op, _ in conditions if name == "segments.date"]
    if daily and not ("BETWEEN" in dates or "=" in dates or {">=", "<="} <= set(dates)):
        raise GaqlError(
            "EXPECTED_FILTERS_ON_DATE_RANGE",
            "segments.date is selected: the WHERE clause needs a finite date range.",
        )
    rows = [
        row
        for row in _gaql_facts(customer, daily)
        if all(_gaql_holds(row, *condition) for condition in conditions)
    ]
    return selected, rows[: int(match["limit"])] if match["limit"] else rows


def gaql_row(selected: list[str], row: dict[str, Any]) -> dict[str, Any]:
    """A flat row as Google sends it: nested lowerCamelCase, int64s as strings, and each
    selected resource's resourceName."""
    resources = {f.split(".")[0] for f in selected}
    names = [f"{r}.resource_name" for r in sorted(resources) if f"{r}.resource_name" in row]
    out: dict[str, Any] = {}
    for name in [*selected, *names]:
        value = row[name]
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        resource, attribute = name.split(".", 1)
        out.setdefault(_camel(resource), {})[_camel_path(attribute)] = value
    return out


class FakeGoogleAds(FakeServer):
    """``POST /token`` (Google OAuth) and ``/v23`` to ``/v26`` Google Ads REST on one port.

    Configuration (attributes, restored by ``reset``): ``clients`` (client_id -> secret; None
    accepts any client with a secret), ``refresh_tokens`` (the ones the token endpoint honours),
    ``developer_tokens`` (None: any non-empty one — Google documents the header as ignored since
    2026-09 but still rejects a request without it), ``accessible_customers`` (digits).
    ``issued`` maps every access token handed out to its ``IssuedToken``.

    Reporting and writes: seed with ``add_customer`` (its currency, and the refresh tokens whose
    access tokens may reach it: any other caller gets 403), ``add_campaign`` and
    ``add_daily_stats``. ``googleAds:search`` runs a small GAQL subset (``FROM campaign``,
    ``WHERE`` with ``=``, ``!=``, ``IN``, ``BETWEEN``, comparisons, ``AND``), pages by
    ``page_size`` rows (10,000 like Google; lower it to page with few rows) and refuses
    ``pageSize``. ``campaignBudgets:mutate`` / ``campaigns:mutate`` change the seeded state and
    are logged in ``writes``.
    """

    name = "fake-google-ads"
    SERVED_VERSIONS: ClassVar[tuple[str, ...]] = ("v23", "v24", "v25", "v26")
    ROUTES = (
        ("POST", r"/token", "token"),
        (
            "GET",
            r"/(?P<version>v\d+)/customers:listAccessibleCustomers",
            "list_accessible_customers",
        ),
        ("POST", rf"/(?P<version>v\d+)/customers/{_CID}/googleAds:search", "search"),
        (
            "POST",
            rf"/(?P<version>v\d+)/customers/{_CID}/campaignBudgets:mutate",
            "campaign_budgets_mutate",
        ),
        ("POST", rf"/(?P<version>v\d+)/customers/{_CID}/campaigns:mutate", "campaigns_mutate"),
    )

    def __init__(
        self,
        *,
        clients: dict[str, str] | None = None,
        refresh_tokens: Iterable[str] = (),
        developer_tokens: Iterable[str] | None = None,
        accessible_customers: Iterable[str] = ("1234567890",),
        token_lifetime: float = 3599,
        page_size: int = 10_000,
    ) -> None:
        self._config = (
            None if clients is None else dict(clients),
            set(refresh_tokens),
            None if developer_tokens is None else set(developer_tokens),
            list(accessible_customers),
        )
        self.token_lifetime = token_lifetime
        self._page_size = page_size
        super().__init__()

    def _restore(self) -> None:
        clients, refresh, developer, customers = copy.deepcopy(self._config)
        self.clients: dict[str, str] | None = clients
        self.refresh_tokens: set[str] = refresh
        self.developer_tokens: set[str] | None = developer
        self.accessible_customers: list[str] = customers
        self.issued: dict[str, IssuedToken] = {}
        self.page_size = self._page_size
        self.customers: dict[str, GoogleCustomer] = {}
        self.writes: list[tuple[str, dict[str, Any]]] = []  # (route, applied update)

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    @property
    def api_url(self) -> str:
        """The Google Ads REST root of the current version (settings.google_ads_api_url)."""
        return f"{self.base_url}/v26"

    def add_client(self, client_id: str, client_secret: str) -> None:
        if self.clients is None:
            self.clients = {}
        self.clients[client_id] = client_secret

    def expire_access_tokens(self) -> None:
        for issued in self.issued.values():
            issued.expires_at = 0.0

    # -- seeded accounts ------------------------------------------------------------------------
    def add_customer(
        self, customer_id: str, *, currency: str = "EUR", refresh_tokens: Iterable[str] = ()
    ) -> GoogleCustomer:
        """A customer account, reachable by access tokens minted from ``refresh_tokens``."""
        customer = GoogleCustomer(customer_id, currency, set(refresh_tokens))
        self.customers[customer_id] = customer
        return customer

    def add_campaign(
        self,
        customer_id: str,
        campaign_id: str,
        name: str,
        *,
        status: str = "ENABLED",
        daily_budget_micros: int = 10_000_000,
        budget_id: str | None = None,
        period: str = "DAILY",
    ) -> str:
        """A campaign with its own budget (or ``budget_id``'s, shared); returns the budget's
        resource name."""
        customer = self.customers[customer_id]
        budget = f"customers/{customer_id}/campaignBudgets/{budget_id or campaign_id + '01'}"
        customer.budgets.setdefault(
            budget, {"amount_micros": daily_budget_micros, "period": period}
        )
        customer.campaigns[campaign_id] = {"name": name, "status": status, "budget": budget}
        return budget

    def add_daily_stats(
        self,
        customer_id: str,
        campaign_id: str,
        day: str,
        *,
        impressions: int,
        clicks: int,
        cost_micros: int,
        conversions: float = 0.0,
    ) -> None:
        self.customers[customer_id].stats.append(
            {
                "campaign_id": campaign_id,
                "date": day,
                "impressions": impressions,
                "clicks": clicks,
                "cost_micros": cost_micros,
                "conversions": conversions,
            }
        )

    def budget_micros(self, customer_id: str, campaign_id: str) -> int:
        customer = self.customers[customer_id]
        return int(customer.budgets[customer.campaigns[campaign_id]["budget"]]["amount_micros"])

    # -- scripting ------------------------------------------------------------------------------
    def script_token_error(
        self,
        status: int = 400,
        error: str = "invalid_grant",
        description: str = "Token has been expired or revoked.",
        *,
        times: int = 1,
    ) -> None:
        """Queue an OAuth error from the token endpoint."""
        self.script(
            "token", status, {"error": error, "error_description": description}, times=times
        )

    def script_error(
        self,
        status: int,
        *,
        route: str = "list_accessible_customers",
        error_code: dict[str, str] | None = None,
        message: str | None = None,
        retry_delay: str = "40s",
        latency: float = 0.0,
        times: int = 1,
    ) -> None:
        """Queue a Google Ads API error in its wire shape (``GOOGLE_API_ERRORS`` defaults);
        a 429 carries ``quotaErrorDetails.retryDelay``."""
        grpc_status, top, code, text = GOOGLE_API_ERRORS.get(
            status, ("UNKNOWN", "Unknown error.", {}, "")
        )
        extra = {}
        if status == 429:
            extra = {
                "details": {
                    "quotaErrorDetails": {
                        "rateScope": "DEVELOPER",
                        "rateName": "Number of operations for basic access",
                        "retryDelay": retry_delay,
                    }
                }
            }
        code = error_code or code
        failure = [(code, message or text, extra)] if code else None
        body = self._ads_body(status, grpc_status, message or top, failure)
        self.script(route, status, body, latency=latency, times=times)

    # -- wire shapes ----------------------------------------------------------------------------
    @staticmethod
    def _ads_body(
        status: int,
        grpc_status: str,
        message: str,
        failures: list[tuple[dict[str, str], str, dict[str, Any]]] | None,
        version: str = "v26",
    ) -> dict[str, Any]:
        error: dict[str, Any] = {"code": status, "message": message, "status": grpc_status}
        if failures:
            error["details"] = [
                {
                    "@type": (
                        f"type.googleapis.com/google.ads.googleads.{version}.errors."
                        "GoogleAdsFailure"
                    ),
                    "errors": [
                        {"errorCode": code, "message": text, **extra}
                        for code, text, extra in failures
                    ],
                    "requestId": secrets.token_urlsafe(16)[:22],
                }
            ]
        return {"error": error}

    def _ads_error(
        self,
        status: int,
        grpc_status: str,
        message: str,
        code: dict[str, str] | None = None,
        text: str = "",
        version: str = "v26",
    ) -> Reject:
        failures: list[tuple[dict[str, str], str, dict[str, Any]]] | None = (
            [(code, text, {})] if code else None
        )
        return Reject(status, self._ads_body(status, grpc_status, message, failures, version))

    @staticmethod
    def _oauth_error(status: int, error: str, description: str) -> Reject:
        return Reject(status, {"error": error, "error_description": description})

    # -- handlers -------------------------------------------------------------------------------
    async def _token(self, req: RecordedRequest) -> Response:
        form: dict[str, Any] = req.body if isinstance(req.body, dict) else {}
        grant = form.get("grant_type") or ""
        if grant != "refresh_token":
            raise self._oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant}")
        client_id = form.get("client_id")
        if not client_id:
            raise self._oauth_error(
                400, "invalid_request", "Could not determine client ID from request."
            )
        secret = form.get("client_secret")
        if self.clients is not None and client_id not in self.clients:
            raise self._oauth_error(401, "invalid_client", "The OAuth client was not found.")
        if not secret:
            raise self._oauth_error(400, "invalid_request", "client_secret is missing.")
        if self.clients is not None and secret != self.clients[client_id]:
            raise self._oauth_error(401, "invalid_client", "Unauthorized")
        refresh = form.get("refresh_token")
        if not refresh:
            raise self._oauth_error(
                400, "invalid_request", "Missing required parameter: refresh_token"
            )
        if refresh not in self.refresh_tokens:
            raise self._oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
        if scripted := await self._scripted("token"):
            return scripted
        token = _token("ya29.a0", 96)
        self.issued[token] = IssuedToken(
            token, client_id, refresh, time.monotonic() + self.token_lifetime, GOOGLE_ADS_SCOPE
        )
        body = {
            "access_token": token,
            "expires_in": 3599,
            "scope": GOOGLE_ADS_SCOPE,
            "token_type": "Bearer",
        }
        headers = {"Cache-Control": "no-cache, no-store, max-age=0, must-revalidate"}
        return JSONResponse(body, headers=headers)

    def _authenticate(self, req: RecordedRequest, version: str) -> IssuedToken:
        """What every Google Ads call checks first: version, token, developer-token, header ids."""
        if version not in self.SERVED_VERSIONS:  # switched off versions are gone entirely
            raise Reject(404, f"<p>The requested URL <code>{req.path}</code> was not found.</p>")
        token = req.bearer
        if token is None:
            raise self._ads_error(401, "UNAUTHENTICATED", GOOGLE_MISSING_CREDENTIAL)
        issued = self.issued.get(token)
        if issued is None:
            raise self._ads_error(401, "UNAUTHENTICATED", GOOGLE_UNAUTHENTICATED)
        if issued.expired:
            raise self._ads_error(
                401,
                "UNAUTHENTICATED",
                GOOGLE_UNAUTHENTICATED,
                {"authenticationError": "OAUTH_TOKEN_EXPIRED"},
                "Authentication of the request failed: the OAuth access token has expired.",
                version,
            )
        developer = req.headers.get("developer-token", "")
        if not developer:
            raise self._ads_error(
                400,
                "INVALID_ARGUMENT",
                "Request contains an invalid argument.",
                {"requestError": "DEVELOPER_TOKEN_PARAMETER_MISSING"},
                "developer-token parameter is missing.",
                version,
            )
        if self.developer_tokens is not None and developer not in self.developer_tokens:
            raise self._ads_error(
                401,
                "UNAUTHENTICATED",
                GOOGLE_MISSING_CREDENTIAL,
                {"authenticationError": "DEVELOPER_TOKEN_INVALID"},
                "The developer token is invalid.",
                version,
            )
        login = req.headers.get("login-customer-id")
        if login is not None and not login.isdigit():  # digits only: "123-456-7890" fails
            raise self._ads_error(
                400,
                "INVALID_ARGUMENT",
                "Request contains an invalid argument.",
                {"requestError": "INVALID_CUSTOMER_ID"},
                f"Invalid customer ID '{login}'.",
                version,
            )
        return issued

    async def _list_accessible_customers(self, req: RecordedRequest, version: str) -> Response:
        self._authenticate(req, version)
        if scripted := await self._scripted("list_accessible_customers"):
            return scripted
        return JSONResponse(
            {"resourceNames": [f"customers/{c}" for c in self.accessible_customers]}
        )

    def _customer(self, issued: IssuedToken, customer_id: str, version: str) -> GoogleCustomer:
        customer = self.customers.get(customer_id)
        if customer is None or issued.subject not in customer.refresh_tokens:
            grpc_status, top, code, text = GOOGLE_API_ERRORS[403]
            raise self._ads_error(403, grpc_status, top, code, text, version)
        return customer

    def _bad_request(self, code: dict[str, str], text: str, version: str) -> Reject:
        return self._ads_error(
            400, "INVALID_ARGUMENT", "Request contains an invalid argument.", code, text, version
        )

    async def _search(self, req: RecordedRequest, version: str, customer_id: str) -> Response:
        customer = self._customer(self._authenticate(req, version), customer_id, version)
        body = req.body if isinstance(req.body, dict) else {}
        if "pageSize" in body:  # pages are a fixed 10,000 rows since v17
            raise self._bad_request(
                {"requestError": "PAGE_SIZE_NOT_SUPPORTED"},
                "Setting the page size is not supported.",
                version,
            )
        query = body.get("query")
        if not isinstance(query, str) or not query.strip():
            raise self._bad_request(
                {"queryError": "BAD_VALUE"}, "The query must not be empty.", version
            )
        if scripted := await self._scripted("search"):
            return scripted
        try:
            selected, rows = run_gaql(query, customer)
        except GaqlError as err:
            raise self._bad_request({"queryError": err.code}, str(err), version) from None
        digest = hashlib.sha256(query.encode()).hexdigest()[:12]
        offset = 0
        if token := body.get("pageToken"):
            offset = _page_offset(str(token), digest)
            if offset is None or offset > len(rows):
                raise self._bad_request(
                    {"requestError": "INVALID_PAGE_TOKEN"}, "Page token is invalid.", version
                )
        end = offset + self.page_size
        answer: dict[str, Any] = {
            "results": [gaql_row(selected, row) for row in rows[offset:end]],
            "fieldMask": ",".join(_camel_path(f) for f in selected),
            "requestId": secrets.token_urlsafe(16)[:22],
        }
        if end < len(rows):
            answer["nextPageToken"] = _page_token(end, digest)
        if (body.get("searchSettings") or {}).get("returnTotalResultsCount"):
            answer["totalResultsCount"] = str(len(rows))
        return JSONResponse(answer)

    async def _campaign_budgets_mutate(
        self, req: RecordedRequest, version: str, customer_id: str
    ) -> Response:
        return await self._mutate(req, version, customer_id, "campaign_budgets_mutate")

    async def _campaigns_mutate(
        self, req: RecordedRequest, version: str, customer_id: str
    ) -> Response:
        return await self._mutate(req, version, customer_id, "campaigns_mutate")

    async def _mutate(
        self, req: RecordedRequest, version: str, customer_id: str, route: str
    ) -> Response:
        customer = self._customer(self._authenticate(req, version), customer_id, version)
        body = req.body if isinstance(req.body, dict) else {}
        operations = body.get("operations")
        if not isinstance(operations, list) or not operations:
            raise self._bad_request(
                {"mutateError": "OPERATIONS_REQUIRED"}, "No operations in the request.", version
            )
        if scripted := await self._scripted(route):
            return scripted
        staged = []
        for op in operations:
            update = op.get("update") if isinstance(op, dict) else None
            mask = op.get("updateMask") if isinstance(op, dict) else None
            if not isinstance(update, dict) or not isinstance(mask, str) or not mask:
                raise self._bad_request(
                    {"fieldMaskError": "FIELD_MASK_MISSING"},
                    "The field mask is missing.",
                    version,
                )
            staged.append(self._staged(customer, route, update, mask.split(","), version))
        if not body.get("validateOnly"):
            for apply, update in staged:
                apply()
                self.writes.append((route, update))
        return JSONResponse({"results": [{"resourceName": u["resourceName"]} for _, u in staged]})

    def _staged(
        self,
        customer: GoogleCustomer,
        route: str,
        update: dict[str, Any],
        mask: list[str],
        version: str,
    ) -> tuple[Callable[[], None], dict[str, Any]]:
        """Validate one update operation; return what applies it."""
        name = str(update.get("resourceName", ""))
        budgets = route == "campaign_budgets_mutate"
        allowed = {"amountMicros"} if budgets else {"status"}
        if not set(mask) <= allowed or not all(f in update for f in mask):
            raise self._bad_request(
                {"fieldMaskError": "FIELD_NOT_FOUND"},
                f"The field mask names a field that cannot be updated here: {','.join(mask)}",
                version,
            )
        if budgets:
            budget = customer.budgets.get(name)
            amount = str(update.get("amountMicros", ""))
            if budget is None:
                raise self._bad_request(
                    {"mutateError": "RESOURCE_NOT_FOUND"}, "Resource was not found.", version
                )
            if not amount.isdigit() or int(amount) % 10_000:
                raise self._bad_request(
                    {"budgetError": "NON_MULTIPLE_OF_MINIMUM_CURRENCY_UNIT"},
                    "Budget amount must be a multiple of the minimum currency unit.",
                    version,
                )
            return (lambda: budget.update(amount_micros=int(amount))), update
        campaign_id = name.rsplit("/", 1)[-1]
        campaign = customer.campaigns.get(campaign_id)
        if name != f"customers/{customer.id}/campaigns/{campaign_id}" or campaign is None:
            raise self._bad_request(
                {"mutateError": "RESOURCE_NOT_FOUND"}, "Resource was not found.", version
            )
        status = update.get("status")
        if status not in ("ENABLED", "PAUSED"):
            raise self._bad_request(
                {"requestError": "INVALID_ENUM_VALUE"},
                f"Invalid value for status: {status}",
                version,
            )
        return (lambda: campaign.update(status=status)), update


# -- Meta Graph / Marketing API -----------------------------------------------------------------

META_ERRORS: dict[int, tuple[str, int | None, bool | None]] = {
    # code -> (message, error_subcode, is_transient)
    1: ("An unknown error occurred", None, True),
    2: ("An unexpected error has occurred. Please retry your request later.", None, True),
    4: ("(#4) Application request limit reached", None, True),
    17: ("(#17) User request limit reached", 2446079, True),
    32: ("(#32) Page request limit reached", None, True),
    100: ("(#100) Invalid parameter", None, None),
    190: (
        "Error validating access token: Session has expired on Sunday, 01-Nov-26 09:00:00 PST. "
        "The current time is Monday, 02-Nov-26 10:00:00 PST.",
        463,
        None,
    ),
    613: ("(#613) Calls to this api have exceeded the rate limit.", None, True),
    80000: (
        "(#80000) There have been too many calls from this ad-account. Wait a bit and try again.",
        2446079,
        True,
    ),
    80003: ("(#80003) There have been too many calls to this ad-account.", 2446079, True),
    80004: (
        "(#80004) There have been too many calls to this ad-account. Wait a bit and try again.",
        2446079,
        True,
    ),
}


DEFAULT: Any = object()  # "the code's default" for meta_error_body; None leaves a key out


def meta_error_body(
    code: int,
    message: str | None = None,
    *,
    subcode: int | None = DEFAULT,
    error_type: str = "OAuthException",
    is_transient: bool | None = DEFAULT,
) -> dict[str, Any]:
    """``{"error": {...}}`` as Graph sends it; defaults per code from ``META_ERRORS``."""
    default_message, default_subcode, default_transient = META_ERRORS.get(
        code, (f"(#{code}) An error occurred", None, None)
    )
    error: dict[str, Any] = {
        "message": message or default_message,
        "type": error_type,
        "code": code,
    }
    if (subcode := default_subcode if subcode is DEFAULT else subcode) is not None:
        error["error_subcode"] = subcode
    if (transient := default_transient if is_transient is DEFAULT else is_transient) is not None:
        error["is_transient"] = transient
    error["fbtrace_id"] = secrets.token_urlsafe(16)[:23]
    return {"error": error}


META_INSIGHT_FIELDS = frozenset(
    {
        "account_id",
        "account_currency",
        "campaign_id",
        "campaign_name",
        "impressions",
        "clicks",
        "spend",
        "actions",
        "date_start",
        "date_stop",
    }
)
META_CAMPAIGN_FIELDS = frozenset(
    {
        "id",
        "name",
        "status",
        "effective_status",
        "objective",
        "daily_budget",
        "lifetime_budget",
        "account_id",
    }
)
META_CAMPAIGN_STATUSES = frozenset({"ACTIVE", "PAUSED", "DELETED", "ARCHIVED"})


@dataclass
class MetaAdAccount:
    id: str  # digits, without act_
    currency: str
    name: str
    tokens: set[str]  # the access tokens that may use it
    campaigns: dict[str, dict[str, Any]] = field(default_factory=dict)
    stats: list[dict[str, Any]] = field(default_factory=list)


class FakeMetaGraph(FakeServer):
    """``GET /v26.0/me`` (and ``/v25.0``) of the Graph API.

    ``tokens`` maps an access token to its user (``{"id", "name"}``); ``expired_tokens`` answer
    190/463; anything else 190 (cannot parse). ``app_secret`` set: an ``appsecret_proof`` that is
    sent must match it (``require_appsecret_proof``: it must be sent).

    Marketing API: seed ``add_ad_account`` (its currency and the tokens that may use it; any
    other token gets 100/33, "does not exist or missing permissions"), ``add_campaign`` (budgets
    in the currency's minor unit, as Graph keeps them) and ``add_daily_stats``. Reads are
    ``act_{id}`` (fields), ``act_{id}/insights`` (level=campaign, time_increment=1, a JSON
    ``time_range``) and ``act_{id}/campaigns``, cursor-paged by ``limit`` capped at
    ``page_size``, with ``paging.next`` only when more follows. ``POST /{campaign_id}`` sets
    ``status`` / ``daily_budget`` / ``name`` and logs the change in ``writes``.
    """

    name = "fake-meta-graph"
    SERVED_VERSIONS: ClassVar[tuple[str, ...]] = ("v25.0", "v26.0")
    ROUTES = (
        ("GET", r"/(?P<version>v\d+\.\d+)/me", "me"),
        ("GET", r"/(?P<version>v\d+\.\d+)/act_(?P<account_id>\d+)", "ad_account"),
        ("GET", r"/(?P<version>v\d+\.\d+)/act_(?P<account_id>\d+)/insights", "insights"),
        ("GET", r"/(?P<version>v\d+\.\d+)/act_(?P<account_id>\d+)/campaigns", "campaigns"),
        ("POST", r"/(?P<version>v\d+\.\d+)/(?P<object_id>\d+)", "update_campaign"),
    )

    def __init__(
        self,
        *,
        tokens: dict[str, dict[str, Any]] | None = None,
        expired_tokens: Iterable[str] = (),
        app_secret: str | None = None,
        require_appsecret_proof: bool = False,
        page_size: int = 5000,
    ) -> None:
        self._config = (
            dict(tokens or {}),
            set(expired_tokens),
            app_secret,
            require_appsecret_proof,
        )
        self._page_size = page_size
        super().__init__()

    def _restore(self) -> None:
        tokens, expired, app_secret, require_proof = copy.deepcopy(self._config)
        self.tokens: dict[str, dict[str, Any]] = tokens
        self.expired_tokens: set[str] = expired
        self.app_secret: str | None = app_secret
        self.require_appsecret_proof: bool = require_proof
        self.page_size = self._page_size
        self.ad_accounts: dict[str, MetaAdAccount] = {}
        self.writes: list[tuple[str, dict[str, str]]] = []  # (campaign id, fields set)

    @property
    def graph_url(self) -> str:
        """The Graph root of the current version (settings.meta_graph_url)."""
        return f"{self.base_url}/v26.0"

    def add_token(self, token: str, *, name: str = "Opshub Test User", **fields: Any) -> None:
        self.tokens[token] = {"id": str(uuid.uuid4().int)[:15], "name": name, **fields}

    # -- seeded ad accounts ---------------------------------------------------------------------
    def add_ad_account(
        self,
        account_id: str,
        *,
        currency: str = "EUR",
        name: str = "Opshub Test Ads",
        tokens: Iterable[str] = (),
    ) -> MetaAdAccount:
        """An ad account (``"act_123"`` or ``"123"``) that ``tokens`` may use."""
        digits = account_id.removeprefix("act_")
        account = MetaAdAccount(digits, currency, name, set(tokens))
        self.ad_accounts[digits] = account
        return account

    def add_campaign(
        self,
        account_id: str,
        campaign_id: str,
        name: str,
        *,
        status: str = "ACTIVE",
        daily_budget: int | None = None,
    ) -> dict[str, Any]:
        """A campaign; ``daily_budget`` in the currency's minor unit (cents for EUR)."""
        campaign: dict[str, Any] = {
            "id": campaign_id,
            "name": name,
            "status": status,
            "effective_status": status,
            "objective": "OUTCOME_SALES",
            "account_id": account_id.removeprefix("act_"),
        }
        if daily_budget is not None:
            campaign["daily_budget"] = str(daily_budget)
        self.ad_accounts[account_id.removeprefix("act_")].campaigns[campaign_id] = campaign
        return campaign

    def add_daily_stats(
        self,
        account_id: str,
        campaign_id: str,
        day: str,
        *,
        impressions: int,
        clicks: int,
        spend: str,
        actions: dict[str, int | str] | None = None,
    ) -> None:
        self.ad_accounts[account_id.removeprefix("act_")].stats.append(
            {
                "campaign_id": campaign_id,
                "date": day,
                "impressions": impressions,
                "clicks": clicks,
                "spend": spend,
                "actions": dict(actions or {}),
            }
        )

    def script_error(
        self,
        code: int,
        *,
        status: int | None = None,
        route: str = "me",
        message: str | None = None,
        subcode: int | None = DEFAULT,
        error_type: str = "OAuthException",
        is_transient: bool | None = DEFAULT,
        regain_access_minutes: float | None = None,
        latency: float = 0.0,
        times: int = 1,
    ) -> None:
        """Queue a Graph error; ``status=200`` sends it with HTTP 200, which Graph also does.
        ``subcode`` / ``is_transient``: the code's default (``META_ERRORS``), None to leave out.
        ``regain_access_minutes``: an ``X-Business-Use-Case-Usage`` header carrying it as
        ``estimated_time_to_regain_access`` (minutes; Graph sends integers, a fraction keeps a
        test short).

        Default status: 500 for codes 1 and 2, else 400.
        """
        body = meta_error_body(
            code, message, subcode=subcode, error_type=error_type, is_transient=is_transient
        )
        http_status = status if status is not None else (500 if code in (1, 2) else 400)
        headers = {}
        if regain_access_minutes is not None:
            usage = {
                "type": "ads_insights",
                "call_count": 100,
                "total_cputime": 40,
                "total_time": 60,
                "estimated_time_to_regain_access": regain_access_minutes,
            }
            business = str(uuid.uuid4().int)[:15]
            headers["X-Business-Use-Case-Usage"] = json.dumps({business: [usage]})
        self.script(route, http_status, body, headers=headers, latency=latency, times=times)

    @staticmethod
    def _error(code: int, message: str | None = None, **kwargs: Any) -> Reject:
        body = meta_error_body(code, message, **kwargs)
        headers = {}
        if code == 190:
            text = body["error"]["message"].replace('"', "'")
            headers["WWW-Authenticate"] = f'OAuth "Facebook Platform" "invalid_token" "{text}"'
        return Reject(400, body, headers)

    def _usage_headers(self, version: str) -> dict[str, str]:
        return {
            "x-app-usage": json.dumps({"call_count": 1, "total_cputime": 1, "total_time": 1}),
            "x-fb-trace-id": secrets.token_urlsafe(8),
            "x-fb-rev": "1020000000",
            "facebook-api-version": version,
        }

    @staticmethod
    def _token_of(req: RecordedRequest) -> str | None:
        form = req.body if isinstance(req.body, dict) else {}
        scheme, _, header_token = req.headers.get("authorization", "").partition(" ")
        token = req.params.get("access_token") or form.get("access_token")
        if not token and scheme.lower() in ("oauth", "bearer"):
            token = header_token.strip()
        return token or None

    def _user(self, req: RecordedRequest, version: str) -> dict[str, Any]:
        if version not in self.SERVED_VERSIONS:
            latest = self.SERVED_VERSIONS[-1]
            raise self._error(
                2635,
                f"(#2635) You are calling a deprecated version of the Ads API. "
                f"Please update to the latest version: {latest}.",
            )
        form = req.body if isinstance(req.body, dict) else {}
        token = self._token_of(req)
        if not token:
            raise self._error(
                2500,
                "An active access token must be used to query information about the current user.",
            )
        if token in self.expired_tokens:
            raise self._error(190)
        user = self.tokens.get(token)
        if user is None:
            raise self._error(
                190, "Invalid OAuth access token - Cannot parse access token", subcode=None
            )
        proof = req.params.get("appsecret_proof") or form.get("appsecret_proof")
        if self.app_secret is not None and (proof or self.require_appsecret_proof):
            expected = hmac.new(self.app_secret.encode(), token.encode(), hashlib.sha256)
            if not proof:
                raise self._error(
                    100,
                    "API calls from the server require an appsecret_proof argument",
                    error_type="GraphMethodException",
                )
            if not hmac.compare_digest(proof, expected.hexdigest()):
                raise self._error(
                    100,
                    "Invalid appsecret_proof provided in the API argument",
                    error_type="GraphMethodException",
                )
        return user

    async def _me(self, req: RecordedRequest, version: str) -> Response:
        user = self._user(req, version)
        if scripted := await self._scripted("me"):
            return scripted
        fields = [f for f in req.params.get("fields", "id,name").split(",") if f]
        unknown = [f for f in fields if f not in user]
        if unknown:
            raise self._error(
                100, f"(#100) Tried accessing nonexisting field ({unknown[0]}) on node type (User)"
            )
        return JSONResponse({f: user[f] for f in fields}, headers=self._usage_headers(version))

    # -- Marketing API --------------------------------------------------------------------------
    @classmethod
    def _missing(cls, object_id: str, method: str) -> Reject:
        """What Graph answers for an object that is not there or not the caller's."""
        verb = "get" if method == "GET" else "post"
        return cls._error(
            100,
            f"Unsupported {verb} request. Object with ID '{object_id}' does not exist, cannot be "
            "loaded due to missing permissions, or does not support this operation. Please read "
            "the Graph API documentation at https://developers.facebook.com/docs/graph-api",
            subcode=33,
            error_type="GraphMethodException",
        )

    def _account(self, req: RecordedRequest, version: str, account_id: str) -> MetaAdAccount:
        self._user(req, version)
        account = self.ad_accounts.get(account_id)
        if account is None or self._token_of(req) not in account.tokens:
            raise self._missing(f"act_{account_id}", req.method)
        return account

    def _fields(self, req: RecordedRequest, allowed: Iterable[str], node: str) -> list[str]:
        fields = [f for f in req.params.get("fields", "id").split(",") if f]
        for name in fields:
            if name not in allowed:
                raise self._error(
                    100, f"(#100) Tried accessing nonexisting field ({name}) on node type ({node})"
                )
        return fields

    def _paged(self, req: RecordedRequest, items: list[Any], scope: str) -> dict[str, Any]:
        """``{"data", "paging"}`` for one page of ``items``: ``limit`` (capped at
        ``page_size``) from the ``after`` cursor, ``next`` only when more follows."""
        try:
            limit = min(int(req.params.get("limit", "25")), self.page_size)
        except ValueError:
            raise self._error(100, "(#100) Param limit must be an integer") from None
        offset = 0
        if "after" in req.params:
            found = _page_offset(req.params["after"], scope)
            if found is None or found > len(items):
                raise self._error(100, "(#100) The after cursor is invalid")
            offset = found
        chunk = items[offset : offset + limit]
        answer: dict[str, Any] = {"data": chunk}
        if chunk:
            after = _page_token(offset + len(chunk), scope)
            answer["paging"] = {"cursors": {"before": _page_token(offset, scope), "after": after}}
            if offset + len(chunk) < len(items):
                query = urlencode({**req.params, "after": after})
                answer["paging"]["next"] = f"{self.base_url}{req.path}?{query}"
        return answer

    async def _ad_account(self, req: RecordedRequest, version: str, account_id: str) -> Response:
        account = self._account(req, version, account_id)
        if scripted := await self._scripted("ad_account"):
            return scripted
        values = {
            "id": f"act_{account.id}",
            "account_id": account.id,
            "name": account.name,
            "currency": account.currency,
            "account_status": 1,
        }
        fields = self._fields(req, values, "AdAccount")
        return JSONResponse({f: values[f] for f in ["id", *fields]})

    async def _insights(self, req: RecordedRequest, version: str, account_id: str) -> Response:
        account = self._account(req, version, account_id)
        if scripted := await self._scripted("insights"):
            return scripted
        if req.params.get("level") != "campaign" or req.params.get("time_increment") != "1":
            raise self._error(100, "(#100) The fake answers level=campaign&time_increment=1 only")
        try:
            time_range = json.loads(req.params["time_range"])
            since, until = str(time_range["since"]), str(time_range["until"])
        except (KeyError, ValueError, TypeError):
            raise self._error(100, "(#100) Param time_range must be {since, until}") from None
        fields = self._fields(req, META_INSIGHT_FIELDS, "AdsInsights")
        stats = sorted(
            (s for s in account.stats if since <= s["date"] <= until),
            key=lambda s: (s["date"], s["campaign_id"]),
        )
        rows = [self._insight(account, stat, fields) for stat in stats]
        return JSONResponse(self._paged(req, rows, f"insights-{account.id}-{since}-{until}"))

    @staticmethod
    def _insight(account: MetaAdAccount, stat: dict[str, Any], fields: list[str]) -> dict[str, Any]:
        campaign = account.campaigns.get(stat["campaign_id"], {})
        values: dict[str, Any] = {
            "account_id": account.id,
            "campaign_id": stat["campaign_id"],
            "campaign_name": campaign.get("name", ""),
            "impressions": str(stat["impressions"]),
            "clicks": str(stat["clicks"]),
            "spend": str(stat["spend"]),
            "account_currency": account.currency,
        }
        if stat["actions"]:  # Graph leaves ``actions`` out when there are none
            values["actions"] = [
                {"action_type": kind, "value": str(value)}
                for kind, value in stat["actions"].items()
            ]
        row = {f: values[f] for f in fields if f in values}
        return {**row, "date_start": stat["date"], "date_stop": stat["date"]}

    async def _campaigns(self, req: RecordedRequest, version: str, account_id: str) -> Response:
        account = self._account(req, version, account_id)
        if scripted := await self._scripted("campaigns"):
            return scripted
        fields = self._fields(req, META_CAMPAIGN_FIELDS, "Campaign")
        rows = [
            {f: c[f] for f in ["id", *fields] if f in c}
            for _, c in sorted(account.campaigns.items())
        ]
        return JSONResponse(self._paged(req, rows, f"campaigns-{account.id}"))

    async def _update_campaign(
        self, req: RecordedRequest, version: str, object_id: str
    ) -> Response:
        self._user(req, version)
        token = self._token_of(req)
        owner = next((a for a in self.ad_accounts.values() if object_id in a.campaigns), None)
        if owner is None or token not in owner.tokens:
            raise self._missing(object_id, "POST")
        if scripted := await self._scripted("update_campaign"):
            return scripted
        form = req.body if isinstance(req.body, dict) else {}
        changes = {
            k: str(v) for k, v in form.items() if k not in ("access_token", "appsecret_proof")
        }
        if not changes:
            raise self._error(100, "(#100) No fields to update were given")
        for name, value in changes.items():
            if name == "status" and value not in META_CAMPAIGN_STATUSES:
                raise self._error(
                    100, "(#100) Param status must be one of {ACTIVE, PAUSED, DELETED, ARCHIVED}"
                )
            if name == "daily_budget" and not value.isdigit():
                raise self._error(100, "(#100) Param daily_budget must be an integer")
            if name not in ("status", "daily_budget", "name"):
                raise self._error(100, f"(#100) Param {name} is not a field this fake can set")
        campaign = owner.campaigns[object_id]
        campaign.update(changes)
        if "status" in changes:
            campaign["effective_status"] = changes["status"]
        self.writes.append((object_id, changes))
        return JSONResponse({"success": True})


# -- LinkedIn Marketing API ---------------------------------------------------------------------


def _months(last: str, count: int) -> list[str]:
    year, month = int(last[:4]), int(last[4:])
    out = []
    for _ in range(count):
        out.append(f"{year:04d}{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out


LINKEDIN_ERRORS: dict[int, dict[str, Any]] = {
    401: {
        "serviceErrorCode": 65602,
        "code": "EXPIRED_ACCESS_TOKEN",
        "message": "The token used in the request has expired",
    },
    403: {
        "serviceErrorCode": 100,
        "code": "ACCESS_DENIED",
        "message": "Not enough permissions to access: adAccounts.GET.20261001",
    },
    429: {
        "serviceErrorCode": 101,
        "message": "Resource level throttle APPLICATION DAY limit for calls to this resource is "
        "reached.",
    },
    500: {"message": "Internal Server Error"},
}


LINKEDIN_ANALYTICS_FIELDS = frozenset(
    {
        "dateRange",
        "pivotValues",
        "impressions",
        "clicks",
        "costInLocalCurrency",
        "externalWebsiteConversions",
    }
)
LINKEDIN_CAMPAIGN_STATUSES = frozenset({"ACTIVE", "PAUSED", "ARCHIVED", "CANCELED", "DRAFT"})


def parse_restli(text: str) -> Any:
    """A Rest.li 2.0 query value, already percent-decoded: ``(k:v,...)`` objects, ``List(...)``
    lists, scalars (which may hold colons, like URNs). Raises ValueError."""
    value, end = _restli_value(text, 0)
    if end != len(text):
        raise ValueError(f"unexpected {text[end:]!r}")
    return value


def _restli_value(text: str, i: int) -> tuple[Any, int]:
    try:
        if text.startswith("List(", i):
            items: list[Any] = []
            i += len("List(")
            while text[i] != ")":
                item, i = _restli_value(text, i)
                items.append(item)
                i += text[i] == ","
            return items, i + 1
        if text[i] == "(":
            obj: dict[str, Any] = {}
            i += 1
            while text[i] != ")":
                colon = text.index(":", i)
                obj[text[i:colon]], i = _restli_value(text, colon + 1)
                i += text[i] == ","
            return obj, i + 1
    except IndexError:
        raise ValueError("unbalanced parentheses") from None
    end = i
    while end < len(text) and text[end] not in ",()":
        end += 1
    return text[i:end], end


def _li_date(value: Any) -> str:
    return date(int(value["year"]), int(value["month"]), int(value["day"])).isoformat()


class FakeLinkedIn(FakeServer):
    """``GET /rest/adAccounts/{id}`` of the LinkedIn Marketing API.

    Every call needs ``LinkedIn-Version: YYYYMM`` (missing: 400; not in ``active_versions``, the
    12 months up to 202610 by default: 426) and ``X-Restli-Protocol-Version: 2.0.0`` (LinkedIn
    itself would fall back to protocol 1.0 encoding; the fake refuses with 400 so a client that
    forgets it is caught). ``tokens`` maps a token to the account ids it may read (None: all);
    ``expired_tokens`` / ``revoked_tokens`` answer 65602 / 65601. ``accounts``: id -> account.

    Campaigns and analytics: seed ``add_campaign`` and ``add_daily_stats``. ``adAnalytics``
    (q=analytics, pivot=CAMPAIGN, timeGranularity=DAILY) parses its Rest.li parameters whether
    commas and colons arrive literal or percent-encoded, and answers only the accounts the token
    may read (an account it may not read simply has no rows, as on LinkedIn). ``adCampaigns``
    (q=search) pages by ``pageSize`` capped at ``page_size``, with ``metadata.nextPageToken``.
    ``POST .../adCampaigns/{id}`` with ``X-RestLi-Method: PARTIAL_UPDATE`` applies
    ``{"patch": {"$set": ...}}`` (status, dailyBudget in the account's currency, name), answers
    204 and logs the change in ``writes``.
    """

    name = "fake-linkedin"
    ROUTES = (
        ("GET", r"/rest/adAccounts/(?P<account_id>[^/]+)", "ad_account"),
        ("GET", r"/rest/adAnalytics", "ad_analytics"),
        ("GET", r"/rest/adAccounts/(?P<account_id>[^/]+)/adCampaigns", "ad_campaigns"),
        (
            "POST",
            r"/rest/adAccounts/(?P<account_id>[^/]+)/adCampaigns/(?P<campaign_id>[^/]+)",
            "update_campaign",
        ),
    )

    def __init__(
        self,
        *,
        tokens: dict[str, set[int] | None] | None = None,
        expired_tokens: Iterable[str] = (),
        revoked_tokens: Iterable[str] = (),
        accounts: dict[int, dict[str, Any]] | None = None,
        active_versions: Iterable[str] | None = None,
        page_size: int = 1000,
    ) -> None:
        self._config = (
            dict(tokens or {}),
            set(expired_tokens),
            set(revoked_tokens),
            dict(accounts or {}),
            set(active_versions if active_versions is not None else _months("202610", 12)),
        )
        self._page_size = page_size
        super().__init__()

    def _restore(self) -> None:
        tokens, expired, revoked, accounts, versions = copy.deepcopy(self._config)
        self.tokens: dict[str, set[int] | None] = tokens
        self.expired_tokens: set[str] = expired
        self.revoked_tokens: set[str] = revoked
        self.accounts: dict[int, dict[str, Any]] = accounts
        self.active_versions: set[str] = versions
        self.page_size = self._page_size
        self.campaigns: dict[int, dict[str, Any]] = {}
        self.stats: list[dict[str, Any]] = []
        self.writes: list[tuple[int, dict[str, Any]]] = []  # (campaign id, fields set)

    @property
    def api_url(self) -> str:
        """The ``/rest`` root (settings.linkedin_api_url)."""
        return f"{self.base_url}/rest"

    def add_token(self, token: str, accounts: Iterable[int] | None = None) -> None:
        self.tokens[token] = None if accounts is None else set(accounts)

    def add_campaign(
        self,
        account_id: int,
        campaign_id: int,
        name: str,
        *,
        status: str = "ACTIVE",
        daily_budget: str | None = "100",
    ) -> dict[str, Any]:
        """A campaign of a seeded account; its budget is in the account's currency."""
        currency = self.accounts[account_id]["currency"]
        campaign: dict[str, Any] = {
            "id": campaign_id,
            "name": name,
            "status": status,
            "account": f"urn:li:sponsoredAccount:{account_id}",
            "campaignGroup": f"urn:li:sponsoredCampaignGroup:{account_id % 1_000_000}",
            "type": "SPONSORED_UPDATES",
            "costType": "CPM",
            "test": False,
            "version": {"versionTag": "1"},
        }
        if daily_budget is not None:
            campaign["dailyBudget"] = {"amount": daily_budget, "currencyCode": currency}
        self.campaigns[campaign_id] = campaign
        return campaign

    def add_daily_stats(
        self,
        campaign_id: int,
        day: str,
        *,
        impressions: int,
        clicks: int,
        cost: str,
        conversions: int = 0,
    ) -> None:
        self.stats.append(
            {
                "campaign_id": campaign_id,
                "date": day,
                "impressions": impressions,
                "clicks": clicks,
                "costInLocalCurrency": cost,
                "externalWebsiteConversions": conversions,
            }
        )

    def add_account(
        self, account_id: int, *, name: str = "Opshub Test Account", **fields: Any
    ) -> dict[str, Any]:
        account = {
            "id": account_id,
            "name": name,
            "currency": "EUR",
            "status": "ACTIVE",
            "type": "BUSINESS",
            "reference": f"urn:li:organization:{account_id % 100_000_000}",
            "test": False,
            "servingStatuses": ["RUNNABLE"],
            "notifiedOnCampaignOptimization": True,
            "notifiedOnCreativeApproval": True,
            "notifiedOnCreativeRejection": True,
            "notifiedOnEndOfCampaign": True,
            "version": {"versionTag": "1"},
            **fields,
        }
        self.accounts[account_id] = account
        return account

    def script_error(
        self,
        status: int,
        *,
        route: str = "ad_account",
        service_error_code: int | None = None,
        code: str | None = None,
        message: str | None = None,
        latency: float = 0.0,
        times: int = 1,
    ) -> None:
        """Queue a LinkedIn error, ``{"status", "serviceErrorCode"?, "code"?, "message"}``."""
        body: dict[str, Any] = {"status": status, **LINKEDIN_ERRORS.get(status, {})}
        body.setdefault("message", "Error")
        given = {"serviceErrorCode": service_error_code, "code": code, "message": message}
        body.update({k: v for k, v in given.items() if v is not None})
        self.script(route, status, body, latency=latency, times=times)

    @staticmethod
    def _error(
        status: int, message: str, code: str | None = None, service: int | None = None
    ) -> Reject:
        body: dict[str, Any] = {"status": status}
        if service is not None:
            body["serviceErrorCode"] = service
        if code is not None:
            body["code"] = code
        body["message"] = message
        return Reject(status, body)

    def _authenticate(self, req: RecordedRequest) -> tuple[str, set[int] | None]:
        version = req.headers.get("linkedin-version")
        if not version:
            raise self._error(
                400,
                "A version must be present. Please specify a version by adding the "
                "LinkedIn-Version header.",
                "VERSION_MISSING",
            )
        if not re.fullmatch(r"\d{6}(\.\d{2})?", version):
            raise self._error(400, f"Invalid version format: {version}", "INVALID_VERSION")
        if version[:6] not in self.active_versions:
            raise self._error(
                426, f"Requested version {version} is not active", "NONEXISTENT_VERSION"
            )
        if req.headers.get("x-restli-protocol-version") != "2.0.0":
            raise self._error(
                400,
                "The X-Restli-Protocol-Version header must be 2.0.0 for this API",
                "ILLEGAL_ARGUMENT",
            )
        token = req.bearer
        if token is None:
            raise self._error(401, "Empty oauth2_access_token", "EMPTY_ACCESS_TOKEN", 65604)
        if token in self.expired_tokens:
            raise self._error(
                401, "The token used in the request has expired", "EXPIRED_ACCESS_TOKEN", 65602
            )
        if token in self.revoked_tokens:
            raise self._error(
                401,
                "The token used in the request has been revoked by the user",
                "REVOKED_ACCESS_TOKEN",
                65601,
            )
        if token not in self.tokens:
            raise self._error(401, "Invalid access token", "INVALID_ACCESS_TOKEN", 65600)
        return version, self.tokens[token]

    def _headers(self) -> dict[str, str]:
        return {"x-restli-protocol-version": "2.0.0", "x-li-uuid": secrets.token_urlsafe(16)}

    async def _ad_account(self, req: RecordedRequest, account_id: str) -> Response:
        version, allowed = self._authenticate(req)
        if scripted := await self._scripted("ad_account"):
            return scripted
        if not account_id.isdigit():
            raise self._error(400, f"Invalid key: {account_id}", "ILLEGAL_ARGUMENT", 100)
        account = self.accounts.get(int(account_id))
        if account is None or (allowed is not None and int(account_id) not in allowed):
            raise self._error(
                403,
                f"Not enough permissions to access: adAccounts.GET.{version[:6]}01",
                "ACCESS_DENIED",
                100,
            )
        return JSONResponse(account, headers=self._headers())

    def _reachable(self, req: RecordedRequest, account_id: str) -> dict[str, Any]:
        """The account, after the checks every call makes and the token's access to it."""
        version, allowed = self._authenticate(req)
        if not account_id.isdigit():
            raise self._error(400, f"Invalid key: {account_id}", "ILLEGAL_ARGUMENT", 100)
        account = self.accounts.get(int(account_id))
        if account is None or (allowed is not None and int(account_id) not in allowed):
            raise self._error(
                403,
                f"Not enough permissions to access: adCampaigns.GET.{version[:6]}01",
                "ACCESS_DENIED",
                100,
            )
        return account

    def _restli(self, req: RecordedRequest, name: str) -> Any:
        try:
            return parse_restli(req.params[name])
        except (KeyError, ValueError) as exc:
            raise self._error(
                400, f"Invalid value for param {name}: {exc}", "ILLEGAL_ARGUMENT", 100
            ) from None

    async def _ad_analytics(self, req: RecordedRequest) -> Response:
        _, allowed = self._authenticate(req)
        if scripted := await self._scripted("ad_analytics"):
            return scripted
        p = req.params
        if (p.get("q"), p.get("pivot"), p.get("timeGranularity")) != (
            "analytics",
            "CAMPAIGN",
            "DAILY",
        ):
            raise self._error(
                400, "The fake answers q=analytics&pivot=CAMPAIGN&timeGranularity=DAILY only"
            )
        date_range, accounts = self._restli(req, "dateRange"), self._restli(req, "accounts")
        try:
            start = _li_date(date_range["start"])
            end = _li_date(date_range["end"]) if "end" in date_range else "9999-12-31"
            urns = [re.fullmatch(r"urn:li:sponsoredAccount:(\d+)", a) for a in accounts]
            ids = {int(m[1]) for m in urns if m is not None}
            if len(ids) != len(accounts) or not ids:
                raise ValueError("accounts must be sponsoredAccount URNs")
        except (KeyError, TypeError, ValueError):
            raise self._error(
                400, "Invalid dateRange or accounts", "ILLEGAL_ARGUMENT", 100
            ) from None
        fields = p.get("fields", "impressions,clicks").split(",")
        if unknown := set(fields) - LINKEDIN_ANALYTICS_FIELDS:
            raise self._error(400, f"Unknown fields: {sorted(unknown)}", "ILLEGAL_ARGUMENT", 100)
        readable = {i for i in ids if i in self.accounts and (allowed is None or i in allowed)}
        elements = []
        for stat in sorted(self.stats, key=lambda s: (s["date"], s["campaign_id"])):
            campaign = self.campaigns[stat["campaign_id"]]
            account_id = int(campaign["account"].rsplit(":", 1)[1])
            if account_id not in readable or not start <= stat["date"] <= end:
                continue
            year, month, day = (int(x) for x in stat["date"].split("-"))
            values = {
                **stat,
                "dateRange": {
                    "start": {"year": year, "month": month, "day": day},
                    "end": {"year": year, "month": month, "day": day},
                },
                "pivotValues": [f"urn:li:sponsoredCampaign:{stat['campaign_id']}"],
            }
            elements.append({f: values[f] for f in fields})
        paging = {"start": 0, "count": 10, "links": []}
        return JSONResponse({"elements": elements, "paging": paging}, headers=self._headers())

    async def _ad_campaigns(self, req: RecordedRequest, account_id: str) -> Response:
        account = self._reachable(req, account_id)
        if scripted := await self._scripted("ad_campaigns"):
            return scripted
        if req.params.get("q") != "search":
            raise self._error(400, "The fake answers q=search only", "ILLEGAL_ARGUMENT", 100)
        statuses = None
        if "search" in req.params:
            search = self._restli(req, "search")
            if not isinstance(search, dict) or set(search) != {"status"}:
                raise self._error(400, "The fake searches by status only", "ILLEGAL_ARGUMENT")
            statuses = set(search["status"]["values"])
        size = req.params.get("pageSize", "100")
        if not size.isdigit() or not 1 <= int(size) <= 1000:
            raise self._error(400, "pageSize must be 1 to 1000", "ILLEGAL_ARGUMENT", 100)
        matching = [
            c
            for _, c in sorted(self.campaigns.items())
            if c["account"] == f"urn:li:sponsoredAccount:{account['id']}"
            and (statuses is None or c["status"] in statuses)
        ]
        scope = f"campaigns-{account['id']}-{sorted(statuses or [])}"
        offset = 0
        if "pageToken" in req.params:
            found = _page_offset(req.params["pageToken"], scope)
            if found is None or found > len(matching):
                raise self._error(400, "Invalid pageToken", "ILLEGAL_ARGUMENT", 100)
            offset = found
        end = offset + min(int(size), self.page_size)
        metadata = {"nextPageToken": _page_token(end, scope)} if end < len(matching) else {}
        body = {"elements": matching[offset:end], "metadata": metadata}
        return JSONResponse(body, headers=self._headers())

    async def _update_campaign(
        self, req: RecordedRequest, account_id: str, campaign_id: str
    ) -> Response:
        account = self._reachable(req, account_id)
        if req.headers.get("x-restli-method", "").upper() != "PARTIAL_UPDATE":
            raise self._error(
                400, "A POST to an entity needs X-RestLi-Method: PARTIAL_UPDATE", "ILLEGAL_ARGUMENT"
            )
        campaign = self.campaigns.get(int(campaign_id)) if campaign_id.isdigit() else None
        if campaign is None or campaign["account"] != f"urn:li:sponsoredAccount:{account['id']}":
            raise self._error(404, f"Campaign {campaign_id} not found", "NOT_FOUND")
        if scripted := await self._scripted("update_campaign"):
            return scripted
        body = req.body if isinstance(req.body, dict) else {}
        changes = (body.get("patch") or {}).get("$set")
        if not isinstance(changes, dict) or not changes:
            raise self._error(400, "The body must be {patch: {$set: {...}}}", "ILLEGAL_ARGUMENT")
        self._check_patch(changes, account["currency"])
        campaign.update(copy.deepcopy(changes))
        campaign["version"] = {"versionTag": str(int(campaign["version"]["versionTag"]) + 1)}
        self.writes.append((int(campaign_id), changes))
        return Response(status_code=204, headers=self._headers())

    def _check_patch(self, changes: dict[str, Any], currency: str) -> None:
        for name, value in changes.items():
            if name == "status" and value not in LINKEDIN_CAMPAIGN_STATUSES:
                raise self._error(400, f"Invalid status {value}", "INVALID_VALUE", 100)
            if name == "dailyBudget":
                budget = value if isinstance(value, dict) else {}
                try:
                    positive = Decimal(str(budget.get("amount"))) > 0
                except ArithmeticError:
                    positive = False
                if not positive:
                    raise self._error(400, "dailyBudget.amount must be positive", "INVALID_VALUE")
                if budget.get("currencyCode") != currency:
                    raise self._error(
                        400,
                        f"dailyBudget.currencyCode must be the account currency {currency}",
                        "INVALID_VALUE",
                    )
            if name not in ("status", "dailyBudget", "name"):
                raise self._error(400, f"The fake cannot set {name}", "ILLEGAL_ARGUMENT")


# -- Amazon Creators API: token endpoints -------------------------------------------------------


@dataclass(frozen=True)
class AmazonClient:
    client_secret: str
    version: str  # "2.1" (Cognito, NA), "2.2" (Cognito, EU), "3.x" (Login with Amazon)
    partner_tag: str | None = None  # set: the only tag its searches may carry


AMAZON_RESOURCES = frozenset({"itemInfo.title", "offersV2.listings.price"})
CURRENCY_SIGNS = {"USD": "$", "EUR": "€", "GBP": "£"}


class FakeAmazonCreators(FakeServer):
    """The Creators API's OAuth2 ``client_credentials`` token endpoints on one port.

    ``POST /auth/o2/token``: Login with Amazon, for 3.x credentials, JSON body, scope
    ``creatorsapi::default``. ``POST /oauth2/token``: a Cognito pool, for 2.x credentials,
    form body (client in the form or HTTP Basic), scope ``creatorsapi/default``. A Cognito pool
    belongs to one region, so it only knows the clients of ``cognito_versions`` (default 2.1,
    us-east-1); a 2.2 (EU) client is unknown there, as on the real service.

    Errors use the Creators API shape: a bad client 401 ``{"type", "message", "reason":
    "InvalidToken"}``; a malformed request or the other version's scope 400 ``{"type",
    "message", "reason", "fieldList"}``.

    ``POST /catalog/v1/searchItems`` (``api_url``): a token this fake issued, sent as ``Bearer
    <tok>, Version 2.x`` for a 2.x credential and plain ``Bearer <tok>`` for 3.x, and an
    ``x-marketplace`` header. The body's ``partnerTag`` must be the client's (``add_client(...,
    partner_tag=)``), ``itemCount`` 1 to 10, ``resources`` known ones. Items are seeded with
    ``add_item`` and matched on every keyword in the title; ``partial_errors`` are sent beside
    the results; nothing found is HTTP 200 with a ``NoResults`` error.
    """

    name = "fake-amazon-creators"
    ROUTES = (
        ("POST", r"/auth/o2/token", "lwa_token"),
        ("POST", r"/oauth2/token", "cognito_token"),
        ("POST", r"/catalog/v1/searchItems", "search_items"),
    )

    def __init__(
        self,
        *,
        clients: dict[str, AmazonClient] | None = None,
        cognito_versions: Iterable[str] = ("2.1",),
    ) -> None:
        self._config = (dict(clients or {}), set(cognito_versions))
        super().__init__()

    def _restore(self) -> None:
        clients, versions = copy.deepcopy(self._config)
        self.clients: dict[str, AmazonClient] = clients
        self.cognito_versions: set[str] = versions
        self.issued: dict[str, IssuedToken] = {}
        self.catalog: list[dict[str, Any]] = []
        self.partial_errors: list[dict[str, str]] = []

    @property
    def lwa_url(self) -> str:
        return f"{self.base_url}/auth/o2/token"

    @property
    def api_url(self) -> str:
        """The catalog root (settings.amazon_creators_api_url)."""
        return f"{self.base_url}/catalog/v1"

    def add_item(
        self,
        asin: str,
        title: str,
        *,
        price: str | None = "19.99",
        currency: str = "USD",
        marketplace: str = "www.amazon.com",
        search_index: str = "All",
    ) -> None:
        self.catalog.append(
            {
                "asin": asin,
                "title": title,
                "price": price,
                "currency": currency,
                "marketplace": marketplace,
                "search_index": search_index,
            }
        )

    def expire_access_tokens(self) -> None:
        for issued in self.issued.values():
            issued.expires_at = 0.0

    @property
    def cognito_url(self) -> str:
        return f"{self.base_url}/oauth2/token"

    def add_client(
        self,
        client_id: str,
        client_secret: str,
        version: str = "3.0",
        *,
        partner_tag: str | None = None,
    ) -> None:
        self.clients[client_id] = AmazonClient(client_secret, version, partner_tag)

    def script_error(
        self,
        status: int,
        *,
        route: str = "lwa_token",
        error_type: str | None = None,
        message: str | None = None,
        reason: str | None = None,
        latency: float = 0.0,
        times: int = 1,
    ) -> None:
        """Queue an error: 429 ``{"type","message","serviceCode","quotaCode"}``, 401
        ``{"type","message","reason"}``, others ``{"type","message"}``."""
        if status == 429:
            body: dict[str, Any] = {
                "type": error_type or "ThrottlingException",
                "message": message or "Rate exceeded",
                "serviceCode": "creatorsapi",
                "quotaCode": "TokenRequestsPerSecond",
            }
        elif status == 401:
            body = {
                "type": error_type or "UnauthorizedException",
                "message": message or "The access token has expired",
                "reason": reason or "TokenExpired",
            }
        else:
            body = {
                "type": error_type or "InternalServerException",
                "message": message or "Internal server error",
            }
        self.script(route, status, body, latency=latency, times=times)

    @staticmethod
    def _invalid(message: str, reason: str, field_name: str | None = None) -> Reject:
        fields = [{"name": field_name, "message": message}] if field_name else []
        body = {
            "type": "ValidationException",
            "message": message,
            "reason": reason,
            "fieldList": fields,
        }
        return Reject(400, body)

    @staticmethod
    def _unauthorized() -> Reject:
        body = {
            "type": "UnauthorizedException",
            "message": "Client authentication failed",
            "reason": "InvalidToken",
        }
        return Reject(401, body)

    async def _grant(
        self,
        route: str,
        form: dict[str, Any],
        scope: str,
        accepts: Callable[[str], bool],
        client: tuple[str, str] | None = None,
    ) -> Response:
        if form.get("grant_type") != "client_credentials":
            raise self._invalid(
                f"Unsupported grant_type: {form.get('grant_type')}",
                "UnsupportedGrantType",
                "grant_type",
            )
        client_id, client_secret = client or (form.get("client_id"), form.get("client_secret"))
        known = self.clients.get(str(client_id))
        if known is None or known.client_secret != client_secret or not accepts(known.version):
            raise self._unauthorized()
        if form.get("scope") != scope:
            raise self._invalid(
                f"Invalid scope {form.get('scope')!r} for this credential version; "
                f"expected {scope!r}",
                "InvalidScope",
                "scope",
            )
        if scripted := await self._scripted(route):
            return scripted
        token = _token("Atc|" if route == "lwa_token" else "eyJraWQiOi", 96)
        self.issued[token] = IssuedToken(
            token, str(client_id), known.version, time.monotonic() + 3600, scope
        )
        return JSONResponse({"access_token": token, "token_type": "bearer", "expires_in": 3600})

    async def _lwa_token(self, req: RecordedRequest) -> Response:
        if not isinstance(req.body, dict):
            raise self._invalid("The request body must be a JSON object", "InvalidRequest")
        return await self._grant(
            "lwa_token", req.body, LWA_SCOPE, lambda version: version.startswith("3.")
        )

    async def _cognito_token(self, req: RecordedRequest) -> Response:
        if req.content_type != "application/x-www-form-urlencoded":
            raise self._invalid(
                "Content-Type must be application/x-www-form-urlencoded", "InvalidRequest"
            )
        client = None
        scheme, _, encoded = req.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                client_id, _, client_secret = base64.b64decode(encoded).decode().partition(":")
            except ValueError:
                raise self._unauthorized() from None
            client = (client_id, client_secret)
        return await self._grant(
            "cognito_token",
            req.body or {},
            COGNITO_SCOPE,
            lambda version: version in self.cognito_versions,
            client,
        )

    def _caller(self, req: RecordedRequest) -> IssuedToken:
        scheme, _, value = req.headers.get("authorization", "").partition(" ")
        token, _, version = (part.strip() for part in value.partition(","))
        issued = self.issued.get(token) if scheme.lower() == "bearer" else None
        if issued is None:
            raise self._unauthorized()
        if issued.expired:
            body = {
                "type": "UnauthorizedException",
                "message": "The access token has expired",
                "reason": "TokenExpired",
            }
            raise Reject(401, body)
        expected = f"Version {issued.subject}" if issued.subject.startswith("2.") else ""
        if version != expected:
            shape = "Bearer <token>" + (f", {expected}" if expected else "")
            raise self._invalid(
                f"Authorization must be '{shape}' for a {issued.subject} credential",
                "InvalidAuthorization",
                "Authorization",
            )
        if not req.headers.get("x-marketplace"):
            raise self._invalid(
                "The x-marketplace header is required", "MissingHeader", "x-marketplace"
            )
        return issued

    async def _search_items(self, req: RecordedRequest) -> Response:
        issued = self._caller(req)
        if scripted := await self._scripted("search_items"):
            return scripted
        body = req.body if isinstance(req.body, dict) else {}
        keywords, count = body.get("keywords"), body.get("itemCount", 10)
        if not isinstance(keywords, str) or not keywords.strip():
            raise self._invalid("keywords is required", "MissingParameter", "keywords")
        if not isinstance(count, int) or not 1 <= count <= 10:
            raise self._invalid(
                "itemCount must be between 1 and 10", "InvalidParameterValue", "itemCount"
            )
        tag, own = body.get("partnerTag"), self.clients[issued.client_id].partner_tag
        if not tag or (own is not None and tag != own):
            raise self._invalid(
                "The partnerTag is not associated with this credential",
                "InvalidPartnerTag",
                "partnerTag",
            )
        resources = body.get("resources") or []
        if not isinstance(resources, list) or not set(resources) <= AMAZON_RESOURCES:
            raise self._invalid("Unknown resources requested", "InvalidParameterValue", "resources")
        index, words = body.get("searchIndex", "All"), keywords.lower().split()
        found = [
            item
            for item in self.catalog
            if item["marketplace"] == req.headers["x-marketplace"]
            and index in ("All", item["search_index"])
            and all(word in item["title"].lower() for word in words)
        ]
        if not found:
            problem = {"code": "NoResults", "message": "No results found for your request."}
            return JSONResponse({"errors": [problem]})
        items = [self._item(item, str(tag), resources) for item in found[:count]]
        answer: dict[str, Any] = {"searchResult": {"items": items, "totalResultCount": len(found)}}
        if self.partial_errors:
            answer["errors"] = list(self.partial_errors)
        return JSONResponse(answer)

    @staticmethod
    def _item(item: dict[str, Any], tag: str, resources: list[str]) -> dict[str, Any]:
        host = item["marketplace"]
        out: dict[str, Any] = {
            "asin": item["asin"],
            "detailPageURL": f"https://{host}/dp/{item['asin']}?tag={tag}&linkCode=ogi&th=1",
        }
        if "itemInfo.title" in resources:
            out["itemInfo"] = {"title": {"displayValue": item["title"], "label": "Title"}}
        if "offersV2.listings.price" in resources and item["price"] is not None:
            sign = CURRENCY_SIGNS.get(item["currency"], item["currency"] + " ")
            money = {
                "amount": float(item["price"]),
                "currency": item["currency"],
                "displayAmount": f"{sign}{item['price']}",
            }
            out["offersV2"] = {"listings": [{"price": {"money": money}}]}
        return out


# -- Saleor GraphQL -----------------------------------------------------------------------------


def saleor_schema(path: Path | str = SALEOR_SCHEMA_PATH) -> graphql.GraphQLSchema:
    """The real Saleor 3.20 schema, built once per process and file (~0.6 s)."""
    return _build_schema(str(Path(path).resolve()))


@functools.cache
def _build_schema(path: str) -> graphql.GraphQLSchema:
    return graphql.build_schema(Path(path).read_text(encoding="utf-8"))


def saleor_error(error: graphql.GraphQLError | str, code: str | None = None) -> dict[str, Any]:
    """One entry of ``errors`` the way Saleor formats it."""
    if isinstance(error, str):
        return {"message": error, "extensions": {"exception": {"code": code or "GraphQLError"}}}
    formatted: dict[str, Any] = {"message": error.message}
    if error.locations:
        formatted["locations"] = [
            {"line": loc.line, "column": loc.column} for loc in error.locations
        ]
    if error.path:
        formatted["path"] = list(error.path)
    original = error.original_error
    name = code or (type(original).__name__ if original else "GraphQLError")
    formatted["extensions"] = {"exception": {"code": name}}
    return formatted


class FakeSaleor(FakeServer):
    """``POST /graphql/`` of a Saleor 3.20 API.

    Every document is parsed and validated against the real schema: a syntax or validation error
    is HTTP 400 ``{"errors": [...]}``. Then the token: ``Authorization: Bearer <t>`` with ``t``
    not in ``tokens`` (staff) or ``app_tokens`` is HTTP 200 ``{"data": null, "errors":
    [InvalidTokenError]}``; no token runs as an anonymous storefront caller. ``me`` answers the
    staff user of a staff token and ``app`` the app of an app token; ``app`` without either is
    a PermissionDenied error, as in Saleor. A valid document is executed by graphql-core with
    ``root`` as the root value (``shop`` by default; add dicts or callables for more fields).
    """

    name = "fake-saleor"
    ROUTES = (("POST", r"/graphql/", "graphql"),)

    def __init__(
        self,
        *,
        tokens: Iterable[str] = (),
        app_tokens: Iterable[str] = (),
        shop_name: str = "Saleor e-commerce",
        schema_path: Path = SALEOR_SCHEMA_PATH,
    ) -> None:
        self.schema = saleor_schema(schema_path)
        self._config = (set(tokens), set(app_tokens), shop_name)
        super().__init__()

    def _restore(self) -> None:
        tokens, app_tokens, shop_name = copy.deepcopy(self._config)
        self.tokens: set[str] = tokens
        self.app_tokens: set[str] = app_tokens
        self.root: dict[str, Any] = {
            "shop": {
                "name": shop_name,
                "description": "Fake Saleor for opshub tests",
                "domain": {
                    "host": "localhost:8000",
                    "sslEnabled": False,
                    "url": "http://localhost:8000",
                },
            }
        }

    @property
    def url(self) -> str:
        return f"{self.base_url}/graphql/"

    def script_http_error(
        self, status: int, body: Any = None, *, latency: float = 0.0, times: int = 1
    ) -> None:
        """Queue a non-GraphQL answer (a proxy's 429/502); default body a Saleor-style error."""
        default = {"errors": [{"message": f"HTTP {status}"}]}
        self.script(
            "graphql", status, default if body is None else body, latency=latency, times=times
        )

    def script_graphql_errors(
        self, message: str, code: str = "PermissionDenied", *, times: int = 1
    ) -> None:
        """Queue an HTTP 200 ``{"data": null, "errors": [...]}``."""
        body = {"data": None, "errors": [saleor_error(message, code)]}
        self.script("graphql", 200, body, times=times)

    @staticmethod
    def _bad_request(*errors: dict[str, Any]) -> Reject:
        return Reject(400, {"errors": list(errors)})

    def _identity(self, token: str | None) -> dict[str, Any]:
        staff, app = token in self.tokens, token in self.app_tokens

        def current_app(_info: Any, **_args: Any) -> dict[str, Any] | None:
            if not (staff or app):
                raise graphql.GraphQLError(
                    "You need one of the following permissions: "
                    "AUTHENTICATED_STAFF_USER, AUTHENTICATED_APP"
                )
            return {"id": "QXBwOjE=", "name": "opshub"} if app else None

        me = {"id": "VXNlcjox", "email": "staff@example.com"} if staff else None
        return {"me": me, "app": current_app}

    async def _graphql(self, req: RecordedRequest) -> Response:
        body = req.body
        if not isinstance(body, dict):
            raise self._bad_request(saleor_error("Unable to parse query."))
        query = body.get("query")
        if not isinstance(query, str) or not query.strip():
            raise self._bad_request(saleor_error("Must provide a query string."))
        try:
            document = graphql.parse(query)
        except graphql.GraphQLError as err:
            raise self._bad_request(saleor_error(err)) from None
        if problems := graphql.validate(self.schema, document):
            raise self._bad_request(*(saleor_error(p) for p in problems))
        auth = req.headers.get("authorization", "")
        token = req.headers.get("authorization-bearer") or (
            auth[7:].strip() if auth.lower().startswith("bearer ") else None
        )
        if token is not None and token not in self.tokens | self.app_tokens:
            error = saleor_error("Invalid token", "InvalidTokenError")
            return JSONResponse({"data": None, "errors": [error]})
        if scripted := await self._scripted("graphql"):
            return scripted
        variables = body.get("variables")
        result = graphql.execute(
            self.schema,
            document,
            root_value={**self._identity(token), **self.root},
            variable_values=variables if isinstance(variables, dict) else None,
            operation_name=body.get("operationName"),
        )
        if inspect.isawaitable(result):
            result = await result
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            payload["errors"] = [saleor_error(e) for e in result.errors]
        return JSONResponse(payload)
