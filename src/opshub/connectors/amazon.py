"""Amazon Creators API (the successor of PA-API 5): product search for sourcing.

The access token comes from where the credential's version says: a regional Cognito pool for
2.x (form body, ``creatorsapi/default``), Login with Amazon for 3.x (JSON,
``creatorsapi::default``); 2.x calls name the version in the ``Authorization`` header too.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from opshub.config import Settings
from opshub.connectors.errors import (
    ConnectorAuthError,
    ConnectorRequestError,
    ConnectorResponseError,
)
from opshub.connectors.http import (
    Failure,
    FailureKind,
    RetryPolicy,
    json_body,
    retry_after_header,
    send,
)
from opshub.connectors.oauth import AccessToken, TokenCache
from opshub.credentials.models import Provider

PROVIDER = Provider.amazon_creators
RESOURCES = ["itemInfo.title", "offersV2.listings.price"]
NO_RESULTS = "NoResults"
UNREADABLE = "Amazon answered in a shape opshub cannot read"

M = TypeVar("M", bound=BaseModel)


class SourcingItem(BaseModel):
    asin: str
    title: str
    url: str
    price: Decimal | None
    currency: str | None
    display_price: str | None


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class _Token(_Wire):
    access_token: str
    expires_in: float = 3600


class _Money(_Wire):
    amount: Decimal | None = None
    currency: str | None = None
    display_amount: str | None = None


class _Price(_Wire):
    money: _Money = Field(default_factory=_Money)


class _Listing(_Wire):
    price: _Price | None = None


class _Offers(_Wire):
    listings: list[_Listing] = []


class _Title(_Wire):
    display_value: str = ""


class _ItemInfo(_Wire):
    title: _Title = Field(default_factory=_Title)


class _Item(_Wire):
    asin: str
    detail_page_url: str = Field(alias="detailPageURL")
    item_info: _ItemInfo = Field(default_factory=_ItemInfo)
    offers_v2: _Offers = Field(default_factory=_Offers)


class _SearchResult(_Wire):
    items: list[_Item] = []


class _Problem(_Wire):
    code: str = ""
    message: str = ""


class _Answer(_Wire):
    search_result: _SearchResult | None = None
    errors: list[_Problem] = []


def _parse(model: type[M], data: object) -> M:
    try:
        return model.model_validate(data)
    except ValidationError:
        raise ConnectorResponseError(PROVIDER, UNREADABLE) from None


def _classify(response: httpx.Response) -> Failure | None:
    """Token endpoints and the API share one error shape: ``{"type", "message", ...}``."""
    status = response.status_code
    if response.is_success:
        return None
    try:
        body = response.json()
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    problems = body.get("errors")
    if status == 404 and problems and all(p.get("code") == NO_RESULTS for p in problems):
        return None  # PA-API 5 said "nothing matched" with a 404; read it as an empty result
    if status == 401:
        reason = body.get("reason") or "Unauthorized"
        return Failure(
            FailureKind.auth,
            f"Amazon refused the Creators API credential ({reason}); check client_id, "
            "client_secret and credential_version",
        )
    if status == 429:
        return Failure(
            FailureKind.rate_limited, "Amazon is throttling this app", retry_after_header(response)
        )
    if status >= 500:
        return Failure(FailureKind.transient, f"Amazon answered {status}")
    fields = [f.get("name") if isinstance(f, dict) else f for f in body.get("fieldList") or []]
    named = f" (fields: {', '.join(str(f) for f in fields)})" if fields else ""
    reason = body.get("reason") or body.get("type") or status
    return Failure(FailureKind.request, f"Amazon rejected the request ({reason}){named}")


class AmazonCreatorsClient:
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
        self._version = str(secret.get("credential_version", "3.0"))
        self._token = TokenCache(self._fetch_token)

    async def search_items(
        self, *, keywords: str, search_index: str = "All", item_count: int = 10
    ) -> list[SourcingItem]:
        body = {
            "keywords": keywords,
            "searchIndex": search_index,
            "itemCount": item_count,
            "partnerTag": self._secret["partner_tag"],
            "resources": RESOURCES,
        }
        answer = _parse(_Answer, await self._post("searchItems", body))
        if answer.search_result is None:
            # Partial errors beside results are tolerated; errors instead of results are not,
            # except "nothing matched", which is an empty answer.
            if answer.errors and all(e.code == NO_RESULTS for e in answer.errors):
                return []
            if answer.errors:
                problem = answer.errors[0]
                raise ConnectorRequestError(
                    PROVIDER, f"Amazon rejected the search ({problem.code}): {problem.message}"
                )
            raise ConnectorResponseError(PROVIDER, UNREADABLE)
        return [self._item(item) for item in answer.search_result.items]

    @staticmethod
    def _item(item: _Item) -> SourcingItem:
        prices = [listing.price.money for listing in item.offers_v2.listings if listing.price]
        money = prices[0] if prices else _Money()
        return SourcingItem(
            asin=item.asin,
            title=item.item_info.title.display_value,
            url=item.detail_page_url,
            price=money.amount,
            currency=money.currency,
            display_price=money.display_amount,
        )

    async def _post(self, operation: str, body: dict[str, Any]) -> object:
        url = f"{self._settings.amazon_creators_api_url}/{operation}"
        # A cached token may have been revoked or expired early: renew it once on a 401.
        for renew in (False, True):
            token = await self._token.get(renew=renew)
            authorization = f"Bearer {token}"
            if self._version.startswith("2."):
                authorization += f", Version {self._version}"
            headers = {
                "Authorization": authorization,
                "x-marketplace": str(self._secret.get("marketplace", "www.amazon.com")),
            }
            request = self._http.build_request("POST", url, json=body, headers=headers)
            try:
                response = await send(
                    self._http, request, provider=PROVIDER, classify=_classify, policy=self._policy
                )
            except ConnectorAuthError:
                if renew:
                    raise
                continue
            return json_body(response, PROVIDER)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _fetch_token(self) -> AccessToken:
        grant = {
            "grant_type": "client_credentials",
            "client_id": str(self._secret["client_id"]),
            "client_secret": str(self._secret["client_secret"]),
        }
        if self._version.startswith("2."):
            url = self._settings.amazon_cognito_urls.get(self._version)
            if url is None:
                raise ConnectorRequestError(
                    PROVIDER,
                    f"no token endpoint for credential version {self._version}: "
                    "add it to amazon_cognito_urls",
                )
            form = {**grant, "scope": "creatorsapi/default"}
            request = self._http.build_request("POST", url, data=form)
        else:
            payload = {**grant, "scope": "creatorsapi::default"}
            request = self._http.build_request("POST", self._settings.amazon_lwa_url, json=payload)
        response = await send(
            self._http, request, provider=PROVIDER, classify=_classify, policy=self._policy
        )
        token = _parse(_Token, json_body(response, PROVIDER))
        return AccessToken(token.access_token, token.expires_in)
