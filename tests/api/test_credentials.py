"""/v1/credentials: bring your own key (API.md "Credentials — bring your own key").

A secret goes in and is never shown again: responses, listings and logs carry its fingerprint
and last four characters only. Health checks run against a tiny provider stand-in started here
(``FakeProvider``), never against the real OpenAI or Anthropic.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from opshub.app import create_app
from opshub.config import Settings
from opshub.credentials import health
from opshub.credentials import service as credentials_service
from opshub.credentials.errors import CredentialMissingError
from opshub.credentials.models import Provider
from opshub.db.engine import DatabaseUrls, tenant_transaction
from opshub.logging import configure_logging
from tests.conftest import TenantHandle
from tests.fakes.black_hole import BlackHole

PROVIDERS = [p.value for p in Provider]


# --- a provider stand-in --------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: str


class FakeProvider:
    """Every provider's check endpoint at once: answers any GET or POST with the status set for
    the credential it carries (``Authorization: Bearer``, ``x-api-key`` or ``access_token``).

    A success is a JSON object every check can read (a model list, an OAuth token, a Graph or
    GraphQL answer without errors); a failure is ``{"error": {"code": status}}``.
    """

    def __init__(self) -> None:
        self.default_status = 200
        self.status_for: dict[str, int] = {}
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self.answer()

            def do_POST(self) -> None:
                self.answer()

            def answer(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                length = int(headers.get("content-length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                url = urlsplit(self.path)
                key = (
                    headers.get("x-api-key")
                    or headers.get("authorization", "").removeprefix("Bearer ")
                    or parse_qs(url.query).get("access_token", [""])[0]
                )
                with fake._lock:
                    fake.seen.append(Seen(self.command, url.path, url.query, headers, body))
                    status = fake.status_for.get(key, fake.default_status)
                if status >= 300:
                    answer: dict[str, Any] = {"error": {"code": status}}
                elif url.path.startswith("/saleor/"):  # the probe asks who the token is
                    answer = {"data": {"me": {"id": "VXNlcjox"}, "app": None}}
                else:
                    answer = {
                        "object": "list",
                        "data": [],
                        "access_token": "fake-access",
                        "id": "1",
                    }
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> FakeProvider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.default_status = 200
            self.status_for.clear()
            self.seen.clear()


def closed_port() -> int:
    """A local port nothing listens on: connecting to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeProvider]:
    server = FakeProvider().start()
    yield server
    server.stop()


@pytest.fixture
def fake(fake_server: FakeProvider) -> FakeProvider:
    fake_server.reset()
    return fake_server


def hub_settings(settings: Settings, fake: FakeProvider, **overrides: Any) -> Settings:
    """Every provider URL opshub calls for a check, pointed at the stand-in."""
    urls = {
        "openai_base_url": f"{fake.base}/v1",
        "anthropic_base_url": fake.base,
        "google_oauth_url": f"{fake.base}/google/token",
        "google_ads_api_url": f"{fake.base}/googleads",
        "meta_graph_url": f"{fake.base}/meta",
        "linkedin_api_url": f"{fake.base}/linkedin",
        "amazon_lwa_url": f"{fake.base}/amazon/token",
        "amazon_cognito_urls": {"2.1": f"{fake.base}/cognito/token"},
    }
    known = {k: v for k, v in urls.items() if k in Settings.model_fields}
    return settings.model_copy(update={**known, **overrides})


@pytest.fixture(scope="module")
async def hub(
    settings: Settings, urls: DatabaseUrls, fake_server: FakeProvider
) -> AsyncIterator[FastAPI]:
    """The app, every provider URL it checks credentials at pointed at the stand-in."""
    application = create_app(hub_settings(settings, fake_server), urls)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def api(hub: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=hub), base_url="http://opshub") as c:
        yield c


# --- helpers ---------------------------------------------------------------------------------


def token(kind: str = "tok") -> str:
    return f"{kind}-{uuid.uuid4().hex}"


def digits() -> str:
    return str(uuid.uuid4().int)[:10]


def valid_secret(provider: str, fake: FakeProvider) -> dict[str, str]:
    """A valid secret for ``provider``, every value unique to this call."""
    secrets = {
        "openai": {"api_key": token("sk-test"), "organization": token("org")},
        "anthropic": {"api_key": token("sk-ant")},
        "openai_compatible": {"base_url": f"{fake.base}/v1", "api_key": token("sk-local")},
        "google_ads": {
            "client_id": token("cid"),
            "client_secret": token("csecret"),
            "refresh_token": token("refresh"),
            "developer_token": token("dev"),
            "login_customer_id": digits(),
            "customer_id": digits(),
        },
        "meta_ads": {
            "access_token": token("EAAB"),
            "ad_account_id": token("act"),
            "app_secret": token("appsecret"),
        },
        "linkedin_ads": {
            "access_token": token("AQV"),
            "ad_account_id": digits(),
            "refresh_token": token("refresh"),
            "client_id": token("cid"),
            "client_secret": token("csecret"),
        },
        "amazon_creators": {
            "client_id": token("amzn"),
            "client_secret": token("amznsecret"),
            "partner_tag": token("tag"),
        },
        "saleor": {
            "url": f"{fake.base}/saleor/{uuid.uuid4().hex[:12]}/graphql/",
            "token": token("saleor"),
        },
    }
    return secrets[provider]


IDENTIFYING = {
    "openai": "api_key",
    "anthropic": "api_key",
    "openai_compatible": "api_key",
    "google_ads": "refresh_token",
    "meta_ads": "access_token",
    "linkedin_ads": "access_token",
    "amazon_creators": "client_secret",
    "saleor": "token",
}


async def put(
    api: AsyncClient, tenant: TenantHandle, provider: str, secret: Any, **extra: Any
) -> Response:
    return await api.put(
        f"/v1/credentials/{provider}", json={"secret": secret, **extra}, headers=tenant.headers
    )


async def listing(api: AsyncClient, tenant: TenantHandle) -> dict[str, dict[str, Any]]:
    response = await api.get("/v1/credentials", headers=tenant.headers)
    assert response.status_code == 200, response.text
    return {entry["provider"]: entry for entry in response.json()}


def assert_error(response: Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code, response.text


async def set_plan(owner_engine: AsyncEngine, tenant: TenantHandle, plan: str) -> None:
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE tenants SET plan = :plan WHERE id = :id"), {"plan": plan, "id": tenant.id}
        )


async def key_with_role(api: AsyncClient, tenant: TenantHandle, role: str) -> dict[str, str]:
    created = await api.post(
        "/v1/keys", json={"name": f"{role} key", "role": role}, headers=tenant.headers
    )
    assert created.status_code == 201, created.text
    return {"Authorization": f"Bearer {created.json()['key']}"}


# --- storing and listing ---------------------------------------------------------------------


async def test_a_new_tenant_sees_every_provider_without_a_key(
    api: AsyncClient, tenant_a: TenantHandle
) -> None:
    entries = await listing(api, tenant_a)

    assert sorted(entries) == sorted(PROVIDERS)
    for entry in entries.values():
        assert entry["source"] == "none" and entry["status"] == "unchecked"
        assert entry["fingerprint"] is None and entry["last4"] is None


async def test_every_provider_stores_a_valid_secret_and_never_shows_it(
    api: AsyncClient, tenant_a: TenantHandle, fake: FakeProvider
) -> None:
    secrets = {provider: valid_secret(provider, fake) for provider in PROVIDERS}
    bodies = []
    for provider, secret in secrets.items():
        response = await put(api, tenant_a, provider, secret, label=f"{provider} key")
        assert response.status_code == 200, (provider, response.text)
        body = response.json()
        bodies.append(response.text)
        identifying = secret[IDENTIFYING[provider]]
        assert body["provider"] == provider
        assert body["label"] == f"{provider} key"
        assert body["last4"] == identifying[-4:]
        assert len(body["fingerprint"]) >= 8 and body["fingerprint"] not in identifying
        # Checked on save against the stand-in, which accepts every credential.
        assert body["status"] == "healthy", (provider, body)
        assert body["checked_at"] is not None
        assert "secret" not in body

    listed = await api.get("/v1/credentials", headers=tenant_a.headers)
    assert listed.status_code == 200, listed.text
    entries = {entry["provider"]: entry for entry in listed.json()}
    assert sorted(entries) == sorted(PROVIDERS)
    assert all(entry["source"] == "byok" for entry in entries.values())
    for provider, secret in secrets.items():
        assert entries[provider]["last4"] == secret[IDENTIFYING[provider]][-4:]
    for provider in PROVIDERS:
        assert entries[provider]["status"] == "healthy", entries[provider]
        assert entries[provider]["checked_at"] is not None
    # Each check carried the stored credential to the provider.
    sent = "\n".join(str(s) for s in fake.seen)
    for provider, secret in secrets.items():
        assert secret[IDENTIFYING[provider]] in sent, f"{provider} was not checked with its key"

    shown = "\n".join([*bodies, listed.text])
    for provider, secret in secrets.items():
        for field, value in secret.items():
            if field in {"base_url", "url"}:
                continue  # where the provider lives, not a secret
            assert value not in shown, f"{provider}.{field} was shown"


async def test_storing_again_replaces_the_key(
    api: AsyncClient, tenant_a: TenantHandle, fake: FakeProvider
) -> None:
    first, second = valid_secret("anthropic", fake), valid_secret("anthropic", fake)
    one = (await put(api, tenant_a, "anthropic", first)).json()
    two = await put(api, tenant_a, "anthropic", second)

    assert two.status_code == 200, two.text
    assert two.json()["fingerprint"] != one["fingerprint"]
    entry = (await listing(api, tenant_a))["anthropic"]
    assert entry["fingerprint"] == two.json()["fingerprint"]
    assert entry["last4"] == second["api_key"][-4:]
    assert fake.seen[-1].headers["x-api-key"] == second["api_key"]


# --- refused shapes --------------------------------------------------------------------------

NEVER_ECHOED = "never-echo-" + uuid.uuid4().hex
ONE_MB_KEY = "sk-" + "x" * (1024 * 1024)


@pytest.mark.parametrize(
    ("provider", "secret", "loc"),
    [
        ("openai", {"organization": NEVER_ECHOED}, "body.secret.api_key"),
        ("openai", {"api_key": NEVER_ECHOED, "project": NEVER_ECHOED}, "body.secret.project"),
        ("openai", {"api_key": ""}, "body.secret.api_key"),
        ("openai", {"api_key": "   "}, "body.secret.api_key"),
        ("anthropic", {"api_key": ONE_MB_KEY}, "body.secret.api_key"),
        ("anthropic", {"api_key": 987654321987654321}, "body.secret.api_key"),
        ("anthropic", {"api_key": [NEVER_ECHOED]}, "body.secret.api_key"),
        (
            "openai_compatible",
            {"base_url": f"not a url {NEVER_ECHOED}", "api_key": NEVER_ECHOED},
            "body.secret.base_url",
        ),
        (
            "google_ads",
            {
                "client_id": NEVER_ECHOED,
                "client_secret": NEVER_ECHOED,
                "refresh_token": NEVER_ECHOED,
                "developer_token": NEVER_ECHOED,
                "login_customer_id": "12ab34never",
            },
            "body.secret.login_customer_id",
        ),
        ("saleor", {"url": "https://shop.example.com/", "token": "short"}, "body.secret.token"),
    ],
    ids=[
        "missing-field",
        "unknown-field",
        "empty-string",
        "blank-string",
        "1mb-api-key",
        "non-string",
        "list",
        "base-url-not-a-url",
        "login-customer-id-letters",
        "too-short-token",
    ],
)
async def test_a_secret_of_the_wrong_shape_is_refused_without_echoing_it(
    api: AsyncClient, tenant_a: TenantHandle, provider: str, secret: dict[str, Any], loc: str
) -> None:
    response = await put(api, tenant_a, provider, secret)

    assert_error(response, 422, "invalid_request")
    fields = response.json()["error"]["details"]["fields"]
    assert loc in [f["loc"] for f in fields], fields
    assert NEVER_ECHOED not in response.text
    assert "987654321987654321" not in response.text
    assert "12ab34never" not in response.text
    assert "xxxxxxxx" not in response.text
    assert len(response.content) < 4096
    assert (await listing(api, tenant_a))[provider]["source"] == "none"


async def test_a_saleor_staff_token_is_refused_on_save_with_the_way_to_an_app_token(
    api: AsyncClient, tenant_a: TenantHandle
) -> None:
    """A JWT from Saleor's tokenCreate expires 5 minutes after it was issued."""
    claims = {"token": "access", "email": "owner@shop.example.com", "exp": 4102444800}
    staff_jwt = jwt.encode(claims, "shop-signing-key-0123456789abcdef", algorithm="HS256")

    response = await put(
        api, tenant_a, "saleor", {"url": "https://shop.example.com/graphql/", "token": staff_jwt}
    )

    assert_error(response, 422, "invalid_request")
    (field,) = response.json()["error"]["details"]["fields"]
    assert field["loc"] == "body.secret.token"
    assert "expires after 5 minutes" in field["message"] and "App" in field["message"]
    assert staff_jwt not in response.text
    assert (await listing(api, tenant_a))["saleor"]["source"] == "none"


async def test_a_secret_that_is_not_an_object_is_refused_without_echoing_it(
    api: AsyncClient, tenant_a: TenantHandle
) -> None:
    response = await put(api, tenant_a, "openai", NEVER_ECHOED)

    assert_error(response, 422, "invalid_request")
    assert "body.secret" in [f["loc"] for f in response.json()["error"]["details"]["fields"]]
    assert NEVER_ECHOED not in response.text


async def test_an_unknown_provider_is_refused(
    api: AsyncClient, tenant_a: TenantHandle, fake: FakeProvider
) -> None:
    secret = valid_secret("openai", fake)
    for method in ("PUT", "DELETE"):
        response = await api.request(
            method, "/v1/credentials/openia", json={"secret": secret}, headers=tenant_a.headers
        )
        assert_error(response, 422, "invalid_request")
        assert "path.provider" in [f["loc"] for f in response.json()["error"]["details"]["fields"]]
        assert secret["api_key"] not in response.text
    check = await api.post("/v1/credentials/openia/check", headers=tenant_a.headers)
    assert_error(check, 422, "invalid_request")


# --- roles and tenants -----------------------------------------------------------------------


@pytest.mark.parametrize("role", ["member", "viewer"])
async def test_only_admins_change_or_check_credentials(
    api: AsyncClient, tenant_a: TenantHandle, fake: FakeProvider, role: str
) -> None:
    stored = await put(api, tenant_a, "openai", valid_secret("openai", fake))
    assert stored.status_code == 200, stored.text
    headers = await key_with_role(api, tenant_a, role)

    attempts = [
        await api.put(
            "/v1/credentials/openai",
            json={"secret": valid_secret("openai", fake)},
            headers=headers,
        ),
        await api.put(
            "/v1/credentials/anthropic",
            json={"secret": valid_secret("anthropic", fake)},
            headers=headers,
        ),
        await api.delete("/v1/credentials/openai", headers=headers),
        await api.post("/v1/credentials/openai/check", headers=headers),
    ]

    for response in attempts:
        assert_error(response, 403, "forbidden")
    entries = await listing(api, tenant_a)
    assert entries["openai"]["fingerprint"] == stored.json()["fingerprint"]
    assert entries["anthropic"]["source"] == "none"
    # Reading the list needs no more than viewer.
    seen = await api.get("/v1/credentials", headers=headers)
    assert seen.status_code == 200, seen.text
    assert {e["provider"]: e for e in seen.json()}["openai"]["source"] == "byok"


async def test_tenants_never_see_or_touch_each_others_credentials(
    api: AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle, fake: FakeProvider
) -> None:
    secret = valid_secret("anthropic", fake)
    assert (await put(api, tenant_a, "anthropic", secret)).status_code == 200

    listed = await api.get("/v1/credentials", headers=tenant_b.headers)
    assert listed.status_code == 200
    assert {e["provider"]: e for e in listed.json()}["anthropic"]["source"] == "none"
    assert secret["api_key"][-4:] not in [e["last4"] for e in listed.json()]

    assert_error(
        await api.delete("/v1/credentials/anthropic", headers=tenant_b.headers), 404, "not_found"
    )
    assert_error(
        await api.post("/v1/credentials/anthropic/check", headers=tenant_b.headers),
        404,
        "not_found",
    )
    assert (await listing(api, tenant_a))["anthropic"]["source"] == "byok"


# --- health ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "health_status"),
    [
        (200, "healthy"),
        (401, "invalid"),
        (403, "invalid"),
        (429, "rate_limited"),
        (500, "unreachable"),
    ],
)
async def test_an_openai_key_is_checked_on_save(
    api: AsyncClient,
    tenant_a: TenantHandle,
    fake: FakeProvider,
    status: int,
    health_status: str,
) -> None:
    secret = valid_secret("openai", fake)
    fake.status_for[secret["api_key"]] = status

    response = await put(api, tenant_a, "openai", secret)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == health_status
    assert body["checked_at"] is not None
    assert [s.path for s in fake.seen] == ["/v1/models"]
    assert fake.seen[0].headers["authorization"] == f"Bearer {secret['api_key']}"
    entry = (await listing(api, tenant_a))["openai"]
    assert entry["status"] == health_status and entry["checked_at"] is not None
    assert secret["api_key"] not in response.text


async def test_an_anthropic_key_is_checked_with_its_own_header(
    api: AsyncClient, tenant_a: TenantHandle, fake: FakeProvider
) -> None:
    secret = valid_secret("anthropic", fake)
    fake.status_for[secret["api_key"]] = 401

    response = await put(api, tenant_a, "anthropic", secret)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "invalid"
    (seen,) = fake.seen
    assert seen.path == "/v1/models"
    assert seen.headers["x-api-key"] == secret["api_key"]
    assert "anthropic-version" in seen.headers
    assert "authorization" not in seen.headers


async def test_an_openai_compatible_server_is_checked_at_its_own_url(
    api: AsyncClient, tenant_a: TenantHandle, fake: FakeProvider
) -> None:
    secret = valid_secret("openai_compatible", fake)
    fake.status_for[secret["api_key"]] = 429

    response = await put(api, tenant_a, "openai_compatible", secret)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "rate_limited"
    assert fake.seen[-1].headers["authorization"] == f"Bearer {secret['api_key']}"


async def test_a_provider_that_refuses_connections_is_unreachable(
    api: AsyncClient, tenant_a: TenantHandle
) -> None:
    secret = {"base_url": f"http://127.0.0.1:{closed_port()}/v1", "api_key": token("sk-local")}

    response = await put(api, tenant_a, "openai_compatible", secret)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "unreachable"
    assert response.json()["checked_at"] is not None
    assert secret["api_key"] not in response.text
    again = await api.post("/v1/credentials/openai_compatible/check", headers=tenant_a.headers)
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "unreachable"


@pytest.fixture
async def lenient_api(hub: FastAPI) -> AsyncIterator[AsyncClient]:
    """An unhandled error comes back as the 500 a caller would get instead of being raised."""
    transport = ASGITransport(app=hub, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://opshub") as c:
        yield c


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_a_key_no_http_header_can_carry_is_not_a_server_error(
    lenient_api: AsyncClient, tenant_a: TenantHandle, fake: FakeProvider, provider: str
) -> None:
    # Copied from a web page: a zero-width space inside the key (str.strip() keeps it).
    secret = {"api_key": f"sk-copied-{uuid.uuid4().hex[:8]}\u200b{uuid.uuid4().hex[:8]}"}

    response = await put(lenient_api, tenant_a, provider, secret)

    assert response.status_code == 422, response.text
    fields = response.json()["error"]["details"]["fields"]
    assert "body.secret.api_key" in [f["loc"] for f in fields]
    assert secret["api_key"] not in response.text
    assert (await listing(lenient_api, tenant_a))[provider]["source"] == "none"  # nothing stored


async def test_a_check_on_demand_records_the_new_health(
    api: AsyncClient, tenant_a: TenantHandle, fake: FakeProvider
) -> None:
    secret = valid_secret("openai", fake)
    saved = await put(api, tenant_a, "openai", secret)
    assert saved.json()["status"] == "healthy"
    saved_at = (await listing(api, tenant_a))["openai"]["checked_at"]
    fake.seen.clear()

    outcomes = []
    for status in (401, 429, 500, 200):
        fake.status_for[secret["api_key"]] = status
        response = await api.post("/v1/credentials/openai/check", headers=tenant_a.headers)
        assert response.status_code == 200, response.text
        outcomes.append(response.json()["status"])
        assert secret["api_key"] not in response.text
        entry = (await listing(api, tenant_a))["openai"]
        assert entry["status"] == response.json()["status"]
        assert datetime.fromisoformat(entry["checked_at"]) > datetime.fromisoformat(saved_at)
        saved_at = entry["checked_at"]

    assert outcomes == ["invalid", "rate_limited", "unreachable", "healthy"]
    assert [s.headers["authorization"] for s in fake.seen] == [f"Bearer {secret['api_key']}"] * 4


async def test_checking_a_provider_without_a_key_is_404(
    api: AsyncClient, tenant_a: TenantHandle, fake: FakeProvider
) -> None:
    response = await api.post("/v1/credentials/openai/check", headers=tenant_a.headers)
    assert_error(response, 404, "not_found")
    assert fake.seen == []


async def test_a_saleor_token_is_checked_at_the_shops_own_url(
    api: AsyncClient, tenant_a: TenantHandle, fake: FakeProvider
) -> None:
    secret = valid_secret("saleor", fake)
    fake.status_for[secret["token"]] = 401

    response = await put(api, tenant_a, "saleor", secret)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "invalid"
    (seen,) = fake.seen
    assert seen.method == "POST" and seen.path == urlsplit(secret["url"]).path
    assert seen.headers["authorization"] == f"Bearer {secret['token']}"
    assert secret["token"] not in response.text


# --- platform keys ---------------------------------------------------------------------------


async def test_platform_keys_only_for_plans_that_include_them(
    settings: Settings,
    urls: DatabaseUrls,
    fake: FakeProvider,
    owner_engine: AsyncEngine,
    make_tenant: Any,
) -> None:
    platform_key = token("sk-platform")
    configured = hub_settings(settings, fake, platform_openai_api_key=SecretStr(platform_key))
    app = create_app(configured, urls)
    standard, pro, own = [await make_tenant(name) for name in ("Std", "Pro", "Own")]
    await set_plan(owner_engine, pro, "pro")
    await set_plan(owner_engine, own, "enterprise")
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://opshub") as api,
    ):
        own_secret = valid_secret("openai", fake)
        assert (await put(api, own, "openai", own_secret)).status_code == 200

        plain = await listing(api, standard)
        paid = await listing(api, pro)
        byok = await listing(api, own)
        texts = [(await api.get("/v1/credentials", headers=t.headers)).text for t in (pro, own)]

        resolver = app.state.opshub.resolver
        resolved = await resolver.resolve(tenant_id=pro.id, provider=Provider.openai)
        with pytest.raises(CredentialMissingError):
            await resolver.resolve(tenant_id=standard.id, provider=Provider.openai)

    assert plain["openai"]["source"] == "none"
    assert paid["openai"]["source"] == "platform"
    assert paid["openai"]["fingerprint"] is None and paid["openai"]["last4"] is None
    # No platform Anthropic key is configured: nothing to fall back on.
    assert paid["anthropic"]["source"] == "none"
    assert byok["openai"]["source"] == "byok"
    assert byok["openai"]["last4"] == own_secret["api_key"][-4:]
    assert all(platform_key not in t for t in texts)
    assert resolved.source == "platform" and resolved.secret == {"api_key": platform_key}


async def test_a_pro_tenant_has_no_platform_key_when_none_is_configured(
    api: AsyncClient, tenant_a: TenantHandle, owner_engine: AsyncEngine
) -> None:
    await set_plan(owner_engine, tenant_a, "pro")
    assert (await listing(api, tenant_a))["openai"]["source"] == "none"


# --- deleting --------------------------------------------------------------------------------


async def test_a_deleted_key_is_gone_for_the_api_and_the_resolver(
    api: AsyncClient, hub: FastAPI, tenant_a: TenantHandle, fake: FakeProvider
) -> None:
    secret = valid_secret("openai", fake)
    assert (await put(api, tenant_a, "openai", secret)).status_code == 200
    resolver = hub.state.opshub.resolver
    before = await resolver.resolve(tenant_id=tenant_a.id, provider=Provider.openai)
    assert before.source == "byok" and before.secret["api_key"] == secret["api_key"]

    response = await api.delete("/v1/credentials/openai", headers=tenant_a.headers)

    assert response.status_code == 204 and response.content == b""
    entry = (await listing(api, tenant_a))["openai"]
    assert entry["source"] == "none" and entry["fingerprint"] is None
    with pytest.raises(CredentialMissingError, match="PUT /v1/credentials/openai"):
        await resolver.resolve(tenant_id=tenant_a.id, provider=Provider.openai)
    again = await api.delete("/v1/credentials/openai", headers=tenant_a.headers)
    assert_error(again, 404, "not_found")


# --- the secret never leaks ------------------------------------------------------------------


async def test_a_canary_key_appears_in_no_response_log_line_or_error(
    api: AsyncClient,
    hub: FastAPI,
    tenant_a: TenantHandle,
    fake: FakeProvider,
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    canary = f"sk-canary-{uuid.uuid4()}"
    shown: list[str] = []

    def record(response: Response) -> Response:
        shown.append(response.text)
        shown.extend(f"{k}: {v}" for k, v in response.headers.items())
        return response

    configure_logging(level="DEBUG", json=True)
    try:
        assert record(await put(api, tenant_a, "openai", {"api_key": canary})).status_code == 200
        record(await api.get("/v1/credentials", headers=tenant_a.headers))
        # A body cut short, and a secret of the wrong shape, both carrying the canary.
        cut_short = '{"secret": {"api_key": "' + canary + '"'
        headers = {**tenant_a.headers, "Content-Type": "application/json"}
        refused = [
            await api.put("/v1/credentials/openai", content=cut_short, headers=headers),
            await put(api, tenant_a, "openai", {"api_key": canary, "project": canary}),
            await put(api, tenant_a, "anthropic", {"api_key": [canary]}),
        ]
        assert all(record(r).status_code == 422 for r in refused)
        for status in (200, 401, 429, 500):
            fake.status_for[canary] = status
            record(await api.post("/v1/credentials/openai/check", headers=tenant_a.headers))

        resolver = hub.state.opshub.resolver
        resolved = await resolver.resolve(tenant_id=tenant_a.id, provider=Provider.openai)
        assert resolved.secret == {"api_key": canary}
        shown += [repr(resolved), str(resolved), f"{resolved!r}", repr([resolved])]

        # Failing checks: a refused connection, and an address httpx can't even use.
        for base in (
            f"http://127.0.0.1:{closed_port()}/v1",
            "ftp://127.0.0.1/v1",
            "http://[::1/v1",
        ):
            broken = settings.model_copy(update={"openai_base_url": base})
            try:
                async with httpx.AsyncClient() as http:
                    result = await health.check(
                        http, provider=Provider.openai, secret={"api_key": canary}, settings=broken
                    )
                shown += [repr(result), str(result.detail)]
            except Exception as exc:  # its text is what is checked
                shown += [str(exc), repr(exc)]

        record(await api.delete("/v1/credentials/openai", headers=tenant_a.headers))
        with pytest.raises(CredentialMissingError) as missing:
            await resolver.resolve(tenant_id=tenant_a.id, provider=Provider.openai)
        shown += [str(missing.value), repr(missing.value)]
        record(await api.post("/v1/credentials/openai/check", headers=tenant_a.headers))
    finally:
        logging.getLogger().handlers.clear()
        with capsys.disabled():
            configure_logging(level="WARNING")
    captured = capsys.readouterr()
    logs = captured.err + captured.out

    assert '"event": "request"' in logs or '"event":"request"' in logs, "no logs captured"
    assert fake.seen and all(s.headers["authorization"] == f"Bearer {canary}" for s in fake.seen)
    everything = "\n".join([*shown, logs])
    for needle in (canary, canary.removeprefix("sk-canary-"), "sk-canary"):
        assert needle not in everything


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_no_providers_check_writes_its_secret_to_the_log(
    api: AsyncClient,
    tenant_a: TenantHandle,
    fake: FakeProvider,
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
    provider: str,
) -> None:
    """At the log level opshub runs with by default, saving and checking each provider's
    credential logs nothing of it (request lines included)."""
    secret = valid_secret(provider, fake)
    secret[IDENTIFYING[provider]] = f"sk-canary-{uuid.uuid4()}"

    configure_logging(level=settings.log_level, json=True)
    try:
        saved = await put(api, tenant_a, provider, secret)
        checked = await api.post(f"/v1/credentials/{provider}/check", headers=tenant_a.headers)
    finally:
        logging.getLogger().handlers.clear()
        with capsys.disabled():
            configure_logging(level="WARNING")
    logs = capsys.readouterr().err

    assert saved.status_code == 200 and checked.status_code == 200, (saved.text, checked.text)
    assert fake.seen, "the checks did not reach the stand-in"
    assert '"event": "request"' in logs, "no logs captured"
    leaked = [line for line in logs.splitlines() if "sk-canary" in line]
    assert leaked == [], leaked


@pytest.fixture
def black_hole() -> Iterator[tuple[str, list[socket.socket]]]:
    """A server on loopback that accepts connections and never answers: (URL, accepted)."""
    with BlackHole() as hole:
        yield f"http://127.0.0.1:{hole.port}/v1", hole.accepted


async def test_checks_waiting_on_a_silent_server_hold_no_connection_and_are_capped_per_tenant(
    settings: Settings,
    urls: DatabaseUrls,
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
    black_hole: tuple[str, list[socket.socket]],
) -> None:
    url, accepted = black_hole
    # Two pooled connections: two checks holding them would stall every other tenant.
    small = settings.model_copy(update={"database_pool_size": 2, "tenant_credential_checks": 2})
    app = create_app(small, urls)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://opshub") as client,
    ):
        state = app.state.opshub
        async with tenant_transaction(state.app_pool, tenant_a.id) as conn:
            await credentials_service.put_credential(
                conn,
                store=state.credential_store,
                tenant_id=tenant_a.id,
                provider=Provider.openai_compatible,
                secret={"base_url": url},
                label=None,
                allow_internal_urls=True,
            )
        path = "/v1/credentials/openai_compatible/check"
        checks = [
            asyncio.create_task(client.post(path, headers=tenant_a.headers)) for _ in range(2)
        ]
        deadline = time.monotonic() + 10
        while len(accepted) < 2:
            assert time.monotonic() < deadline, "the checks never reached the silent server"
            await asyncio.sleep(0.02)

        async with asyncio.timeout(30):  # a regression waits for a connection, maybe for ever
            refused = await client.post(path, headers=tenant_a.headers)
            started = time.monotonic()
            other = await client.get("/v1/data/leads", headers=tenant_b.headers)
            waited = time.monotonic() - started
        for check in checks:
            check.cancel()
        await asyncio.gather(*checks, return_exceptions=True)

    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "rate_limited"
    assert other.status_code == 200
    # Behind the checks it would wait for one to give up (10 s against a silent server); 1.8 s
    # was seen at load ~21 without any wait for a connection.
    assert waited < 5.0, f"another tenant's read waited {waited:.1f} s behind the checks"
