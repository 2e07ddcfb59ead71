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
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl

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


class FakeGoogleAds(FakeServer):
    """``POST /token`` (Google OAuth) and ``/v23`` to ``/v26`` Google Ads REST on one port.

    Configuration (attributes, restored by ``reset``): ``clients`` (client_id -> secret; None
    accepts any client with a secret), ``refresh_tokens`` (the ones the token endpoint honours),
    ``developer_tokens`` (None: any non-empty one — Google documents the header as ignored since
    2026-09 but still rejects a request without it), ``accessible_customers`` (digits).
    ``issued`` maps every access token handed out to its ``IssuedToken``.
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
    )

    def __init__(
        self,
        *,
        clients: dict[str, str] | None = None,
        refresh_tokens: Iterable[str] = (),
        developer_tokens: Iterable[str] | None = None,
        accessible_customers: Iterable[str] = ("1234567890",),
        token_lifetime: float = 3599,
    ) -> None:
        self._config = (
            None if clients is None else dict(clients),
            set(refresh_tokens),
            None if developer_tokens is None else set(developer_tokens),
            list(accessible_customers),
        )
        self.token_lifetime = token_lifetime
        super().__init__()

    def _restore(self) -> None:
        clients, refresh, developer, customers = copy.deepcopy(self._config)
        self.clients: dict[str, str] | None = clients
        self.refresh_tokens: set[str] = refresh
        self.developer_tokens: set[str] | None = developer
        self.accessible_customers: list[str] = customers
        self.issued: dict[str, IssuedToken] = {}

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


class FakeMetaGraph(FakeServer):
    """``GET /v26.0/me`` (and ``/v25.0``) of the Graph API.

    ``tokens`` maps an access token to its user (``{"id", "name"}``); ``expired_tokens`` answer
    190/463; anything else 190 (cannot parse). ``app_secret`` set: an ``appsecret_proof`` that is
    sent must match it (``require_appsecret_proof``: it must be sent).
    """

    name = "fake-meta-graph"
    SERVED_VERSIONS: ClassVar[tuple[str, ...]] = ("v25.0", "v26.0")
    ROUTES = (("GET", r"/(?P<version>v\d+\.\d+)/me", "me"),)

    def __init__(
        self,
        *,
        tokens: dict[str, dict[str, Any]] | None = None,
        expired_tokens: Iterable[str] = (),
        app_secret: str | None = None,
        require_appsecret_proof: bool = False,
    ) -> None:
        self._config = (
            dict(tokens or {}),
            set(expired_tokens),
            app_secret,
            require_appsecret_proof,
        )
        super().__init__()

    def _restore(self) -> None:
        tokens, expired, app_secret, require_proof = copy.deepcopy(self._config)
        self.tokens: dict[str, dict[str, Any]] = tokens
        self.expired_tokens: set[str] = expired
        self.app_secret: str | None = app_secret
        self.require_appsecret_proof: bool = require_proof

    @property
    def graph_url(self) -> str:
        """The Graph root of the current version (settings.meta_graph_url)."""
        return f"{self.base_url}/v26.0"

    def add_token(self, token: str, *, name: str = "Opshub Test User", **fields: Any) -> None:
        self.tokens[token] = {"id": str(uuid.uuid4().int)[:15], "name": name, **fields}

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
        latency: float = 0.0,
        times: int = 1,
    ) -> None:
        """Queue a Graph error; ``status=200`` sends it with HTTP 200, which Graph also does.
        ``subcode`` / ``is_transient``: the code's default (``META_ERRORS``), None to leave out.

        Default status: 500 for codes 1 and 2, else 400.
        """
        body = meta_error_body(
            code, message, subcode=subcode, error_type=error_type, is_transient=is_transient
        )
        http_status = status if status is not None else (500 if code in (1, 2) else 400)
        self.script(route, http_status, body, latency=latency, times=times)

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

    def _user(self, req: RecordedRequest, version: str) -> dict[str, Any]:
        if version not in self.SERVED_VERSIONS:
            latest = self.SERVED_VERSIONS[-1]
            raise self._error(
                2635,
                f"(#2635) You are calling a deprecated version of the Ads API. "
                f"Please update to the latest version: {latest}.",
            )
        form = req.body if isinstance(req.body, dict) else {}
        scheme, _, header_token = req.headers.get("authorization", "").partition(" ")
        token = req.params.get("access_token") or form.get("access_token")
        if not token and scheme.lower() in ("oauth", "bearer"):
            token = header_token.strip()
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


class FakeLinkedIn(FakeServer):
    """``GET /rest/adAccounts/{id}`` of the LinkedIn Marketing API.

    Every call needs ``LinkedIn-Version: YYYYMM`` (missing: 400; not in ``active_versions``, the
    12 months up to 202610 by default: 426) and ``X-Restli-Protocol-Version: 2.0.0`` (LinkedIn
    itself would fall back to protocol 1.0 encoding; the fake refuses with 400 so a client that
    forgets it is caught). ``tokens`` maps a token to the account ids it may read (None: all);
    ``expired_tokens`` / ``revoked_tokens`` answer 65602 / 65601. ``accounts``: id -> account.
    """

    name = "fake-linkedin"
    ROUTES = (("GET", r"/rest/adAccounts/(?P<account_id>[^/]+)", "ad_account"),)

    def __init__(
        self,
        *,
        tokens: dict[str, set[int] | None] | None = None,
        expired_tokens: Iterable[str] = (),
        revoked_tokens: Iterable[str] = (),
        accounts: dict[int, dict[str, Any]] | None = None,
        active_versions: Iterable[str] | None = None,
    ) -> None:
        self._config = (
            dict(tokens or {}),
            set(expired_tokens),
            set(revoked_tokens),
            dict(accounts or {}),
            set(active_versions if active_versions is not None else _months("202610", 12)),
        )
        super().__init__()

    def _restore(self) -> None:
        tokens, expired, revoked, accounts, versions = copy.deepcopy(self._config)
        self.tokens: dict[str, set[int] | None] = tokens
        self.expired_tokens: set[str] = expired
        self.revoked_tokens: set[str] = revoked
        self.accounts: dict[int, dict[str, Any]] = accounts
        self.active_versions: set[str] = versions

    @property
    def api_url(self) -> str:
        """The ``/rest`` root (settings.linkedin_api_url)."""
        return f"{self.base_url}/rest"

    def add_token(self, token: str, accounts: Iterable[int] | None = None) -> None:
        self.tokens[token] = None if accounts is None else set(accounts)

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


# -- Amazon Creators API: token endpoints -------------------------------------------------------


@dataclass(frozen=True)
class AmazonClient:
    client_secret: str
    version: str  # "2.1" (Cognito, NA), "2.2" (Cognito, EU), "3.x" (Login with Amazon)


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
    """

    name = "fake-amazon-creators"
    ROUTES = (
        ("POST", r"/auth/o2/token", "lwa_token"),
        ("POST", r"/oauth2/token", "cognito_token"),
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

    @property
    def lwa_url(self) -> str:
        return f"{self.base_url}/auth/o2/token"

    @property
    def cognito_url(self) -> str:
        return f"{self.base_url}/oauth2/token"

    def add_client(self, client_id: str, client_secret: str, version: str = "3.0") -> None:
        self.clients[client_id] = AmazonClient(client_secret, version)

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
