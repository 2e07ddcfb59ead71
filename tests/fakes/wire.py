"""What every connector fake shares: a real HTTP server per provider, recorded requests,
scripted answers. The providers' fakes (google_ads, meta, linkedin, amazon, saleor_check) build
on it.

One class per provider, each a real HTTP server on 127.0.0.1 (a free port, a background thread)::

    with FakeMetaGraph() as meta:
        meta.add_token("EAAB-valid-token", name="Acme Ads")
        settings = settings.model_copy(update={"meta_graph_url": meta.graph_url})
        ...
        assert meta.requests_for("me")[0].params["access_token"] == "EAAB-valid-token"

- ``google_ads.FakeGoogleAds``: Google's OAuth token endpoint (``token_url``), Google Ads REST
  (``api_url``).
- ``meta.FakeMetaGraph``: Graph / Marketing API (``graph_url``).
- ``linkedin.FakeLinkedIn``: LinkedIn Marketing API (``api_url``, the ``/rest`` root).
- ``amazon.FakeAmazonCreators``: the Creators API token endpoints, Login with Amazon (``lwa_url``,
  3.x credentials), one region's Cognito pool (``cognito_url``, 2.x credentials), the catalog.
- ``saleor_check.FakeSaleor``: a Saleor 3.20 ``/graphql/`` endpoint for credential checks that
  validates every document against the real schema and executes it with graphql-core over
  ``root``; the shop with its catalogue and mutations is ``saleor.FakeSaleorServer``.

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
import json
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

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


def _page_token(offset: int, scope: str) -> str:
    """An opaque page token, valid only for the query (``scope``) it was issued for."""
    return base64.urlsafe_b64encode(f"{scope}:{offset}".encode()).decode()


def _page_offset(token: str, scope: str) -> int | None:
    try:
        issued_for, _, offset = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        return int(offset) if issued_for == scope else None
    except ValueError:
        return None
