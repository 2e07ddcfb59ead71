"""Google's OAuth token endpoint (``token_url``) and Google Ads REST v23-v26 (``api_url``),
wire-exact per specs/external-apis.md: GAQL search with page tokens, searchStream, mutates.
"""

from __future__ import annotations

import copy
import hashlib
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from starlette.responses import JSONResponse, Response

from tests.fakes.wire import (
    GOOGLE_ADS_SCOPE,
    FakeServer,
    IssuedToken,
    RecordedRequest,
    Reject,
    _page_offset,
    _page_token,
    _token,
)

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
