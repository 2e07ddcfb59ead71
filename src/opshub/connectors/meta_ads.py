"""Meta Marketing API (Graph v26.0): daily campaign insights, campaigns, budget and status.

Graph reports failures in ``error.code``, sometimes with HTTP 200, so every answer is read for
one. Budgets are integers in the currency's smallest unit: cents, or whole units for the
currencies Meta lists with offset 1.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import date
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar

import httpx
from pydantic import BaseModel, Field, ValidationError

from opshub.config import Settings
from opshub.connectors.errors import ConnectorRequestError, ConnectorResponseError, ensure_currency
from opshub.connectors.http import Failure, FailureKind, RetryPolicy, json_body, send
from opshub.connectors.models import Campaign, Channel, PerformanceRow
from opshub.credentials.models import Provider

PROVIDER = Provider.meta_ads
THROTTLING = frozenset({4, 17, 32, 613, 80000, 80003, 80004})
INVALID_TOKEN = frozenset({102, 190})
# Meta's currency table: these count in whole units (offset 1), every other one in cents.
WHOLE_UNIT_CURRENCIES = frozenset(
    {"CLP", "COP", "CRC", "HUF", "ISK", "IDR", "JPY", "KRW", "PYG", "TWD", "VND"}
)
INSIGHT_FIELDS = "campaign_id,campaign_name,impressions,clicks,spend,actions,date_start,date_stop"
CAMPAIGN_FIELDS = "id,name,status,effective_status,daily_budget,lifetime_budget"
# What counts as a conversion: purchases, leads and pixel/custom conversions. Meta reports one
# purchase as omni_purchase, purchase and offsite_conversion.fb_pixel_purchase at once (a lead
# as lead and offsite_conversion.fb_pixel_lead), so per family only the most inclusive type
# present is counted; every other offsite_conversion.* type counts as it is.
CONVERSION_FAMILIES = (
    ("omni_purchase", "purchase", "offsite_conversion.fb_pixel_purchase"),
    ("lead", "offsite_conversion.fb_pixel_lead"),
)
UNREADABLE = "Meta answered in a shape opshub cannot read"

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class _Action(BaseModel):
    action_type: str
    value: Decimal


class _Insight(BaseModel):
    campaign_id: str
    campaign_name: str = ""
    impressions: int = 0
    clicks: int = 0
    spend: Decimal = Decimal(0)
    actions: list[_Action] = []
    date_start: date


class _CampaignWire(BaseModel):
    id: str
    name: str = ""
    status: str = ""
    daily_budget: int | None = None


class _Paging(BaseModel):
    cursors: dict[str, str] = {}
    next: str | None = None


class _Page(BaseModel, Generic[T]):
    data: list[T]
    paging: _Paging = Field(default_factory=_Paging)


class _Account(BaseModel):
    currency: str


def _parse(model: type[M], data: object) -> M:
    try:
        return model.model_validate(data)
    except ValidationError:
        raise ConnectorResponseError(PROVIDER, UNREADABLE) from None


def conversions(actions: list[_Action]) -> float:
    values = {a.action_type: a.value for a in actions}
    counted = Decimal(0)
    for family in CONVERSION_FAMILIES:
        counted += next((values[t] for t in family if t in values), Decimal(0))
    in_family = {t for family in CONVERSION_FAMILIES for t in family}
    for action_type, value in values.items():
        if action_type.startswith("offsite_conversion.") and action_type not in in_family:
            counted += value
    return float(counted)


def _regain_after(response: httpx.Response) -> float | None:
    """``estimated_time_to_regain_access`` (minutes) of X-Business-Use-Case-Usage, in seconds."""
    try:
        usage = json.loads(response.headers.get("x-business-use-case-usage", ""))
        minutes = max(
            float(entry.get("estimated_time_to_regain_access") or 0)
            for entries in usage.values()
            for entry in entries
        )
    except (ValueError, TypeError, AttributeError):  # absent, not JSON, or an unknown shape
        return None
    return minutes * 60 if minutes > 0 else None


class MetaAdsClient:
    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        settings: Settings,
        secret: dict[str, Any],
        policy: RetryPolicy = RetryPolicy(),
    ) -> None:
        self._http = http
        self._graph = settings.meta_graph_url
        self._policy = policy
        self._token = str(secret["access_token"])
        # Stored with or without the act_ prefix: both name the same account.
        self._account = "act_" + str(secret["ad_account_id"]).removeprefix("act_")
        self._auth = {"access_token": self._token}
        if app_secret := secret.get("app_secret"):
            proof = hmac.new(str(app_secret).encode(), self._token.encode(), hashlib.sha256)
            self._auth["appsecret_proof"] = proof.hexdigest()
        self._secrets = [v for v in secret.values() if isinstance(v, str) and len(v) >= 8]
        self._currency: str | None = None

    # -- reads ------------------------------------------------------------------------------
    async def performance(self, *, start: date, end: date) -> list[PerformanceRow]:
        currency = await self._account_currency()
        params = {
            "fields": INSIGHT_FIELDS,
            "level": "campaign",
            "time_range": json.dumps({"since": start.isoformat(), "until": end.isoformat()}),
            "time_increment": "1",
            "limit": "500",
        }
        return [
            PerformanceRow(
                date=row.date_start,
                channel=Channel.meta_ads,
                campaign_id=row.campaign_id,
                campaign=row.campaign_name,
                impressions=row.impressions,
                clicks=row.clicks,
                spend=row.spend,
                conversions=conversions(row.actions),
                currency=currency,
            )
            for row in await self._pages(f"{self._account}/insights", params, _Page[_Insight])
        ]

    async def campaigns(self) -> list[Campaign]:
        currency = await self._account_currency()
        params = {"fields": CAMPAIGN_FIELDS, "limit": "200"}
        return [
            Campaign(
                channel=Channel.meta_ads,
                id=c.id,
                name=c.name,
                status=c.status,
                daily_budget=None if c.daily_budget is None else c.daily_budget / _unit(currency),
                currency=currency,
            )
            for c in await self._pages(f"{self._account}/campaigns", params, _Page[_CampaignWire])
        ]

    # -- writes (absolute values: repeating one is harmless) --------------------------------
    async def set_daily_budget(
        self,
        *,
        campaign_id: str,
        budget_id: str | None,  # noqa: ARG002 - Meta budgets live on the campaign itself
        amount: Decimal,
        currency: str,
    ) -> dict[str, Any]:
        account_currency = await self._account_currency()
        ensure_currency(PROVIDER, account=account_currency, asked=currency)
        minor = amount * _unit(currency)
        if amount <= 0 or minor != minor.to_integral_value():
            raise ConnectorRequestError(PROVIDER, f"{amount} {currency} is not a valid budget")
        await self._update(campaign_id, {"daily_budget": str(int(minor))})
        return {"campaign_id": campaign_id, "daily_budget": str(amount), "currency": currency}

    async def set_status(
        self, *, campaign_id: str, status: Literal["PAUSED", "ACTIVE"]
    ) -> dict[str, Any]:
        await self._update(campaign_id, {"status": status})
        return {"campaign_id": campaign_id, "status": status}

    # -- wire -------------------------------------------------------------------------------
    async def _account_currency(self) -> str:
        if self._currency is None:
            answer = await self._call("GET", self._account, {"fields": "currency"})
            self._currency = _parse(_Account, answer).currency
        return self._currency

    async def _update(self, campaign_id: str, form: dict[str, str]) -> None:
        if not campaign_id.isdigit():  # it becomes the path: nothing but an object id
            raise ConnectorRequestError(PROVIDER, f"{campaign_id!r} is not a Meta campaign id")
        answer = await self._call("POST", campaign_id, form)
        if not isinstance(answer, dict) or answer.get("success") is not True:
            raise ConnectorResponseError(PROVIDER, UNREADABLE)

    async def _pages(
        self, path: str, params: dict[str, str], page_model: type[_Page[M]]
    ) -> list[M]:
        # Cursor paging: ask again with ``after`` while Graph says there is a ``next`` page. The
        # ``next`` URL itself is not followed, so the token only ever goes to the Graph root.
        items: list[M] = []
        seen: set[str] = set()
        query = dict(params)
        while True:
            page = _parse(page_model, await self._call("GET", path, query))
            items.extend(page.data)
            after = page.paging.cursors.get("after")
            if not page.paging.next:
                return items
            if not after or after in seen:
                raise ConnectorResponseError(PROVIDER, UNREADABLE)
            seen.add(after)
            query = {**params, "after": after}

    async def _call(self, method: str, path: str, fields: dict[str, str]) -> object:
        url = f"{self._graph}/{path}"
        if method == "GET":
            request = self._http.build_request("GET", url, params={**fields, **self._auth})
        else:
            request = self._http.build_request("POST", url, data={**fields, **self._auth})
        response = await send(
            self._http, request, provider=PROVIDER, classify=self._classify, policy=self._policy
        )
        return json_body(response, PROVIDER)

    def _classify(self, response: httpx.Response) -> Failure | None:
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            if response.is_success:
                return None
            if response.status_code >= 500:
                return Failure(FailureKind.transient, f"Meta answered {response.status_code}")
            return Failure(FailureKind.request, f"Meta answered {response.status_code}")
        code = error.get("code")
        message = self._scrub(str(error.get("message", "")))
        if code in INVALID_TOKEN:
            return Failure(
                FailureKind.auth, f"Meta refused the access token (code {code}); reconnect Meta Ads"
            )
        if code in THROTTLING:
            return Failure(
                FailureKind.rate_limited,
                f"Meta is throttling this ad account (code {code})",
                _regain_after(response),
            )
        if code in (1, 2) or error.get("is_transient") is True or response.status_code >= 500:
            return Failure(FailureKind.transient, f"Meta had a temporary error (code {code})")
        return Failure(FailureKind.request, f"Meta rejected the request (code {code}): {message}")

    def _scrub(self, text: str) -> str:
        # Provider text goes to the agent: no secret value may ride along, however unlikely.
        for value in (*self._secrets, self._auth.get("appsecret_proof", "")):
            if value:
                text = text.replace(value, "***")
        return text[:300]


def _unit(currency: str) -> Decimal:
    return Decimal(1) if currency in WHOLE_UNIT_CURRENCIES else Decimal(100)
