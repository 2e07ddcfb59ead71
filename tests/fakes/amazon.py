"""The Amazon Creators API: its token endpoints (Login with Amazon, ``lwa_url``, for 3.x
credentials; one region's Cognito pool, ``cognito_url``, for 2.x) and catalog search (``api_url``).
"""

from __future__ import annotations

import base64
import copy
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse, Response

from tests.fakes.wire import (
    COGNITO_SCOPE,
    LWA_SCOPE,
    FakeServer,
    IssuedToken,
    RecordedRequest,
    Reject,
    _token,
)

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
