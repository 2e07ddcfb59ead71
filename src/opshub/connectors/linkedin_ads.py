"""LinkedIn Marketing API (versioned ``/rest``): campaign analytics, campaigns, budget and status.

Queries use Rest.li 2.0 encoding, written out by hand because a generic encoder would escape
the parentheses, colons and commas that carry the structure; only URNs are percent-encoded.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from opshub.config import Settings
from opshub.connectors.errors import ConnectorRequestError, ConnectorResponseError, ensure_currency
from opshub.connectors.http import (
    Failure,
    FailureKind,
    RetryPolicy,
    json_body,
    retry_after_header,
    send,
)
from opshub.connectors.models import Campaign, Channel, PerformanceRow
from opshub.credentials.models import Provider

PROVIDER = Provider.linkedin_ads
ANALYTICS_FIELDS = (
    "dateRange,pivotValues,impressions,clicks,costInLocalCurrency,externalWebsiteConversions"
)
LISTED = ("ACTIVE", "PAUSED")
# Finished campaigns still have analytics in a past range; their names come from here too.
NAMED = ("ACTIVE", "PAUSED", "ARCHIVED", "COMPLETED", "CANCELED")
CAMPAIGN_URN = "urn:li:sponsoredCampaign:"
UNREADABLE = "LinkedIn answered in a shape opshub cannot read"

M = TypeVar("M", bound=BaseModel)


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class _Money(_Wire):
    amount: Decimal
    currency_code: str


class _CampaignWire(_Wire):
    id: int
    name: str = ""
    status: str = ""
    daily_budget: _Money | None = None


class _Metadata(_Wire):
    next_page_token: str | None = None


class _CampaignPage(_Wire):
    elements: list[_CampaignWire]
    metadata: _Metadata = Field(default_factory=_Metadata)


class _Day(_Wire):
    year: int
    month: int
    day: int


class _DateRange(_Wire):
    start: _Day


class _AnalyticsRow(_Wire):
    date_range: _DateRange
    pivot_values: list[str] = Field(min_length=1)
    impressions: int = 0
    clicks: int = 0
    cost_in_local_currency: Decimal = Decimal(0)
    external_website_conversions: float = 0.0


class _Analytics(_Wire):
    elements: list[_AnalyticsRow]


class _Account(_Wire):
    currency: str


def _parse(model: type[M], data: object) -> M:
    try:
        return model.model_validate(data)
    except ValidationError:
        raise ConnectorResponseError(PROVIDER, UNREADABLE) from None


def _restli_date(day: date) -> str:
    return f"(year:{day.year},month:{day.month},day:{day.day})"


class LinkedInAdsClient:
    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        settings: Settings,
        secret: dict[str, Any],
        policy: RetryPolicy = RetryPolicy(),
    ) -> None:
        self._http = http
        self._api = settings.linkedin_api_url
        self._version = settings.linkedin_version
        self._policy = policy
        self._account = str(secret["ad_account_id"])
        self._headers = {
            "Authorization": f"Bearer {secret['access_token']}",
            "LinkedIn-Version": settings.linkedin_version,
            "X-Restli-Protocol-Version": "2.0.0",
        }
        self._secrets = [v for v in secret.values() if isinstance(v, str) and len(v) >= 8]
        self._currency: str | None = None

    # -- reads ------------------------------------------------------------------------------
    async def performance(self, *, start: date, end: date) -> list[PerformanceRow]:
        currency = await self._account_currency()
        names = {str(c.id): c.name for c in await self._campaigns(NAMED)}
        account_urn = quote(f"urn:li:sponsoredAccount:{self._account}", safe="")
        query = (
            "q=analytics&pivot=CAMPAIGN&timeGranularity=DAILY"
            f"&dateRange=(start:{_restli_date(start)},end:{_restli_date(end)})"
            f"&accounts=List({account_urn})&fields={ANALYTICS_FIELDS}"
        )
        analytics = _parse(_Analytics, await self._call("GET", f"adAnalytics?{query}"))
        rows = []
        for row in analytics.elements:
            urn, day = row.pivot_values[0], row.date_range.start
            if not urn.startswith(CAMPAIGN_URN):
                raise ConnectorResponseError(PROVIDER, UNREADABLE)
            campaign_id = urn.removeprefix(CAMPAIGN_URN)
            rows.append(
                PerformanceRow(
                    date=date(day.year, day.month, day.day),
                    channel=Channel.linkedin_ads,
                    campaign_id=campaign_id,
                    campaign=names.get(campaign_id, campaign_id),
                    impressions=row.impressions,
                    clicks=row.clicks,
                    spend=row.cost_in_local_currency,
                    conversions=row.external_website_conversions,
                    currency=currency,
                )
            )
        return rows

    async def campaigns(self) -> list[Campaign]:
        listed = await self._campaigns(LISTED)
        # A campaign without a daily budget still bills in the account's currency.
        account = (
            await self._account_currency() if any(not c.daily_budget for c in listed) else None
        )
        return [
            Campaign(
                channel=Channel.linkedin_ads,
                id=str(c.id),
                name=c.name,
                status=c.status,
                daily_budget=c.daily_budget.amount if c.daily_budget else None,
                currency=c.daily_budget.currency_code if c.daily_budget else account,
            )
            for c in listed
        ]

    # -- writes (absolute values: repeating one is harmless) --------------------------------
    async def set_daily_budget(
        self,
        *,
        campaign_id: str,
        budget_id: str | None,  # noqa: ARG002 - LinkedIn budgets live on the campaign itself
        amount: Decimal,
        currency: str,
    ) -> dict[str, Any]:
        account_currency = await self._account_currency()
        ensure_currency(PROVIDER, account=account_currency, asked=currency)
        if amount <= 0:
            raise ConnectorRequestError(PROVIDER, f"{amount} {currency} is not a valid budget")
        budget = {"amount": str(amount), "currencyCode": currency}
        await self._patch(campaign_id, {"dailyBudget": budget})
        return {"campaign_id": campaign_id, "daily_budget": str(amount), "currency": currency}

    async def set_status(
        self, *, campaign_id: str, status: Literal["PAUSED", "ACTIVE"]
    ) -> dict[str, Any]:
        await self._patch(campaign_id, {"status": status})
        return {"campaign_id": campaign_id, "status": status}

    # -- wire -------------------------------------------------------------------------------
    async def _account_currency(self) -> str:
        if self._currency is None:
            answer = await self._call("GET", f"adAccounts/{self._account}")
            self._currency = _parse(_Account, answer).currency
        return self._currency

    async def _campaigns(self, statuses: tuple[str, ...]) -> list[_CampaignWire]:
        base = (
            f"adAccounts/{self._account}/adCampaigns?q=search"
            f"&search=(status:(values:List({','.join(statuses)})))&pageSize=100"
        )
        campaigns: list[_CampaignWire] = []
        seen: set[str] = set()
        path = base
        while True:
            page = _parse(_CampaignPage, await self._call("GET", path))
            campaigns.extend(page.elements)
            token = page.metadata.next_page_token
            if not token:
                return campaigns
            if token in seen:  # a server that loops would never end the read
                raise ConnectorResponseError(PROVIDER, UNREADABLE)
            seen.add(token)
            path = f"{base}&pageToken={quote(token, safe='')}"

    async def _patch(self, campaign_id: str, fields: dict[str, Any]) -> None:
        if not campaign_id.isdigit():  # it becomes the path: nothing but a campaign id
            raise ConnectorRequestError(PROVIDER, f"{campaign_id!r} is not a LinkedIn campaign id")
        path = f"adAccounts/{self._account}/adCampaigns/{campaign_id}"
        await self._call("POST", path, {"patch": {"$set": fields}})

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> object:
        headers = dict(self._headers)
        if body is not None:
            headers["X-RestLi-Method"] = "PARTIAL_UPDATE"
        # The URL is passed whole so httpx keeps the Rest.li query exactly as written.
        request = self._http.build_request(
            method, f"{self._api}/{path}", json=body, headers=headers
        )
        response = await send(
            self._http, request, provider=PROVIDER, classify=self._classify, policy=self._policy
        )
        if response.status_code == 204:
            return None
        return json_body(response, PROVIDER)

    def _classify(self, response: httpx.Response) -> Failure | None:
        status = response.status_code
        if response.is_success:
            return None
        try:
            body = response.json()
        except ValueError:
            body = None
        body = body if isinstance(body, dict) else {}
        code = str(body.get("code") or body.get("serviceErrorCode") or status)
        message = self._scrub(str(body.get("message", "")))
        if status == 401:
            return Failure(
                FailureKind.auth, f"LinkedIn refused the access token ({code}); reconnect LinkedIn"
            )
        if status == 426:
            return Failure(
                FailureKind.request,
                f"LinkedIn no longer serves API version {self._version}: set linkedin_version "
                "(OPSHUB_LINKEDIN_VERSION) to a current YYYYMM",
            )
        if status == 429:
            return Failure(
                FailureKind.rate_limited,
                "LinkedIn is throttling this app",
                retry_after_header(response),
            )
        if status >= 500:
            return Failure(FailureKind.transient, f"LinkedIn answered {status}")
        if status == 403:
            return Failure(
                FailureKind.request,
                f"LinkedIn denied access to ad account {self._account} ({code}); the member "
                "needs a role on it",
            )
        return Failure(FailureKind.request, f"LinkedIn rejected the request ({code}): {message}")

    def _scrub(self, text: str) -> str:
        # Provider text goes to the agent: no secret value may ride along, however unlikely.
        for value in self._secrets:
            text = text.replace(value, "***")
        return text[:300]
