"""Google Ads over REST (v26): GAQL reads through ``googleAds:search``, budget and status writes
through ``:mutate``. The gRPC SDK is not used: its TLS-only channel cannot reach a local fake."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from opshub.config import Settings
from opshub.connectors.errors import (
    ConnectorAuthError,
    ConnectorRequestError,
    ConnectorResponseError,
    ensure_currency,
)
from opshub.connectors.http import (
    Failure,
    FailureKind,
    RetryPolicy,
    json_body,
    retry_after_header,
    send,
)
from opshub.connectors.models import Campaign, Channel, PerformanceRow
from opshub.connectors.oauth import AccessToken, TokenCache
from opshub.credentials.models import Provider

PROVIDER = Provider.google_ads
MICROS = Decimal(1_000_000)
PERFORMANCE_GAQL = (
    "SELECT customer.currency_code, campaign.id, campaign.name, metrics.impressions, "
    "metrics.clicks, metrics.cost_micros, metrics.conversions, segments.date FROM campaign "
    "WHERE segments.date BETWEEN '{start}' AND '{end}'"
)
CAMPAIGNS_GAQL = (
    "SELECT campaign.id, campaign.name, campaign.status, campaign.campaign_budget, "
    "campaign_budget.amount_micros, campaign_budget.period, customer.currency_code "
    "FROM campaign WHERE campaign.status != 'REMOVED'"
)
BUDGET_OF_GAQL = (
    "SELECT campaign.id, campaign.campaign_budget, customer.currency_code FROM campaign "
    "WHERE campaign.id = {campaign_id}"
)
UNREADABLE = "Google Ads answered in a shape opshub cannot read"
# The token endpoint's answers that mean the refresh token or OAuth client is no longer good.
OAUTH_REFUSALS = frozenset({"invalid_grant", "invalid_client", "unauthorized_client"})


class _Wire(BaseModel):
    # Rows are lowerCamelCase; int64s arrive as strings and pydantic's lax mode reads them.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class _Token(_Wire):
    access_token: str
    expires_in: float = 3599


class _CampaignWire(_Wire):
    id: str
    name: str = ""
    status: str = ""
    campaign_budget: str | None = None


class _Budget(_Wire):
    amount_micros: int | None = None
    period: str = "DAILY"


class _Metrics(_Wire):
    # Zero metrics may be left out of a row (proto3 JSON), so they default to zero.
    impressions: int = 0
    clicks: int = 0
    cost_micros: int = 0
    conversions: float = 0.0


class _Segments(_Wire):
    day: date | None = Field(default=None, alias="date")


class _Customer(_Wire):
    currency_code: str | None = None


class _Row(_Wire):
    campaign: _CampaignWire
    campaign_budget: _Budget | None = None
    metrics: _Metrics = Field(default_factory=_Metrics)
    segments: _Segments = Field(default_factory=_Segments)
    customer: _Customer = Field(default_factory=_Customer)


class _Page(_Wire):
    results: list[_Row] = []
    next_page_token: str | None = None


W = TypeVar("W", bound=BaseModel)


def _parse(model: type[W], data: object) -> W:
    try:
        return model.model_validate(data)
    except ValidationError:
        raise ConnectorResponseError(PROVIDER, UNREADABLE) from None


def _read_error(body: object) -> tuple[str, str, float | None]:
    """(first errorCode value, its message, quota ``retryDelay`` in seconds) of an API error."""
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code, message, delay = str(error.get("status", "")), str(error.get("message", "")), None
    failures = [
        failure
        for detail in error.get("details") or []
        if isinstance(detail, dict)  # GoogleAdsFailure: {"@type", "errors": [...], "requestId"}
        for failure in detail.get("errors") or []
        if isinstance(failure, dict)
    ]
    if failures:
        codes = list((failures[0].get("errorCode") or {}).values())
        code = str(codes[0]) if codes else code
        message = str(failures[0].get("message", message))
    for failure in failures:
        quota = (failure.get("details") or {}).get("quotaErrorDetails") or {}
        if match := re.fullmatch(r"(\d+(?:\.\d+)?)s", str(quota.get("retryDelay", ""))):
            delay = float(match[1])
    return code, message, delay


class GoogleAdsClient:
    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        settings: Settings,
        secret: dict[str, Any],
        policy: RetryPolicy = RetryPolicy(),
    ) -> None:
        self._http = http
        self._settings = settings
        self._secret = secret
        self._policy = policy
        self._customer = str(secret.get("customer_id") or secret["login_customer_id"])
        self._token = TokenCache(self._fetch_token)

    # -- reads ------------------------------------------------------------------------------
    async def performance(self, *, start: date, end: date) -> list[PerformanceRow]:
        query = PERFORMANCE_GAQL.format(start=start.isoformat(), end=end.isoformat())
        rows = []
        for row in await self._search(query):
            if row.segments.day is None or not row.customer.currency_code:
                raise ConnectorResponseError(PROVIDER, UNREADABLE)
            rows.append(
                PerformanceRow(
                    date=row.segments.day,
                    channel=Channel.google_ads,
                    campaign_id=row.campaign.id,
                    campaign=row.campaign.name,
                    impressions=row.metrics.impressions,
                    clicks=row.metrics.clicks,
                    spend=Decimal(row.metrics.cost_micros) / MICROS,
                    conversions=row.metrics.conversions,
                    currency=row.customer.currency_code,
                )
            )
        return rows

    async def campaigns(self) -> list[Campaign]:
        campaigns = []
        for row in await self._search(CAMPAIGNS_GAQL):
            budget = row.campaign_budget
            daily = None  # a CUSTOM_PERIOD (total) budget is not a daily one
            if budget is not None and budget.amount_micros is not None and budget.period == "DAILY":
                daily = Decimal(budget.amount_micros) / MICROS
            campaigns.append(
                Campaign(
                    channel=Channel.google_ads,
                    id=row.campaign.id,
                    name=row.campaign.name,
                    status=row.campaign.status,
                    daily_budget=daily,
                    currency=row.customer.currency_code,
                    budget_id=row.campaign.campaign_budget,
                )
            )
        return campaigns

    # -- writes (absolute values: repeating one is harmless) --------------------------------
    async def set_daily_budget(
        self, *, campaign_id: str, budget_id: str | None, amount: Decimal, currency: str
    ) -> dict[str, Any]:
        micros = amount * MICROS
        if amount <= 0 or micros != micros.to_integral_value():
            raise ConnectorRequestError(PROVIDER, f"{amount} is not a valid budget amount")
        # Budgets are their own objects: look up the campaign's, and its account's currency.
        rows = await self._search(BUDGET_OF_GAQL.format(campaign_id=self._id(campaign_id)))
        if not rows or not rows[0].campaign.campaign_budget:
            raise ConnectorRequestError(
                PROVIDER, f"customer {self._customer} has no campaign {campaign_id} with a budget"
            )
        actual = rows[0].campaign.campaign_budget
        account_currency = rows[0].customer.currency_code
        ensure_currency(PROVIDER, account=str(account_currency), asked=currency)
        if budget_id and budget_id not in (actual, actual.rsplit("/", 1)[-1]):
            raise ConnectorRequestError(
                PROVIDER, f"{budget_id} is not the budget of campaign {campaign_id} ({actual})"
            )
        update = {"resourceName": actual, "amountMicros": str(int(micros))}
        await self._mutate("campaignBudgets", update, "amountMicros")
        return {
            "campaign_id": campaign_id,
            "budget_id": actual,
            "daily_budget": str(amount),
            "currency": currency,
        }

    async def set_status(
        self, *, campaign_id: str, status: Literal["PAUSED", "ACTIVE"]
    ) -> dict[str, Any]:
        resource = f"customers/{self._customer}/campaigns/{self._id(campaign_id)}"
        google_status = "ENABLED" if status == "ACTIVE" else "PAUSED"
        await self._mutate(
            "campaigns", {"resourceName": resource, "status": google_status}, "status"
        )
        return {"campaign_id": campaign_id, "status": status}

    # -- wire -------------------------------------------------------------------------------
    @staticmethod
    def _id(campaign_id: str) -> str:
        # The id goes into GAQL and a resource name: digits only, nothing else can be injected.
        if not campaign_id.isdigit():
            raise ConnectorRequestError(
                PROVIDER, f"{campaign_id!r} is not a Google Ads campaign id"
            )
        return campaign_id

    async def _search(self, query: str) -> list[_Row]:
        rows: list[_Row] = []
        seen: set[str] = set()
        body: dict[str, Any] = {"query": query}  # never pageSize: Google pages by 10,000
        while True:
            page = _parse(_Page, await self._post("googleAds:search", body))
            rows.extend(page.results)
            if not page.next_page_token:
                return rows
            if page.next_page_token in seen:  # a server that loops would never end the read
                raise ConnectorResponseError(PROVIDER, UNREADABLE)
            seen.add(page.next_page_token)
            body = {"query": query, "pageToken": page.next_page_token}

    async def _mutate(self, collection: str, update: dict[str, str], mask: str) -> None:
        body = {"operations": [{"update": update, "updateMask": mask}]}
        answer = await self._post(f"{collection}:mutate", body)
        if not isinstance(answer, dict) or not answer.get("results"):
            raise ConnectorResponseError(PROVIDER, UNREADABLE)

    async def _post(self, path: str, body: dict[str, Any]) -> object:
        url = f"{self._settings.google_ads_api_url}/customers/{self._customer}/{path}"
        request = await self._api_request(url, body, renew=False)
        try:
            return await self._send(request)
        except ConnectorAuthError:
            # A cached token may have been revoked or expired early: renew it once.
            return await self._send(await self._api_request(url, body, renew=True))

    async def _api_request(self, url: str, body: dict[str, Any], *, renew: bool) -> httpx.Request:
        headers = {
            "Authorization": f"Bearer {await self._token.get(renew=renew)}",
            "developer-token": str(self._secret["developer_token"]),
            "login-customer-id": str(self._secret["login_customer_id"]),
        }
        return self._http.build_request("POST", url, json=body, headers=headers)

    async def _send(self, request: httpx.Request) -> object:
        response = await send(
            self._http, request, provider=PROVIDER, classify=self._classify, policy=self._policy
        )
        return json_body(response, PROVIDER)

    async def _fetch_token(self) -> AccessToken:
        form = {
            "grant_type": "refresh_token",
            "client_id": str(self._secret["client_id"]),
            "client_secret": str(self._secret["client_secret"]),
            "refresh_token": str(self._secret["refresh_token"]),
        }
        request = self._http.build_request("POST", self._settings.google_oauth_url, data=form)
        token = _parse(_Token, await self._send(request))
        return AccessToken(token.access_token, token.expires_in)

    def _classify(self, response: httpx.Response) -> Failure | None:
        if response.is_success:
            return None
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        oauth = body.get("error") if isinstance(body, dict) else None
        if isinstance(oauth, str):  # the token endpoint: {"error": "invalid_grant", ...}
            if oauth in OAUTH_REFUSALS:
                return Failure(
                    FailureKind.auth,
                    f"Google refused the OAuth credential ({oauth}); reconnect Google Ads",
                )
            code, message, delay = oauth, "", None
        else:
            code, message, delay = _read_error(body)
        if status == 401:
            return Failure(
                FailureKind.auth,
                f"Google Ads refused the credential ({code}); reconnect Google Ads",
            )
        if status == 429:
            delay = delay or retry_after_header(response)
            return Failure(FailureKind.rate_limited, "Google Ads quota exhausted", delay)
        if status >= 500:
            return Failure(FailureKind.transient, f"Google Ads answered {status}")
        if status == 403:
            return Failure(
                FailureKind.request,
                f"Google Ads denied access to customer {self._customer} ({code}); "
                "check customer_id and login_customer_id",
            )
        if status == 404:
            return Failure(
                FailureKind.request, "Google Ads does not serve this path; check google_ads_api_url"
            )
        return Failure(
            FailureKind.request, f"Google Ads rejected the request ({code}): {self._scrub(message)}"
        )

    def _scrub(self, text: str) -> str:
        # Provider text goes to the agent: no secret value may ride along, however unlikely.
        for value in (*self._secret.values(), self._token.current):
            if isinstance(value, str) and len(value) >= 8:
                text = text.replace(value, "***")
        return text[:300]
