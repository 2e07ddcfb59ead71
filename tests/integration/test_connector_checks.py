"""opshub's credential health checks for the connector providers, against wire-exact local fakes.

Each provider's check (opshub.credentials.checks) runs through ``health.check`` with the settings
pointed at the fakes in tests/fakes/ (google_ads, meta, linkedin, amazon, saleor_check): a valid
credential is healthy, one the provider refuses is invalid, a throttled one rate_limited, and a
provider that is down unreachable.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import graphql
import httpx
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from opshub.app import create_app
from opshub.config import Settings
from opshub.credentials import health
from opshub.credentials.checks import SALEOR_PROBE, CheckResult
from opshub.credentials.models import Health, Provider
from opshub.credentials.schemas import validate_secret
from opshub.db.engine import DatabaseUrls
from tests.conftest import TenantHandle
from tests.fakes.amazon import FakeAmazonCreators
from tests.fakes.google_ads import FakeGoogleAds
from tests.fakes.linkedin import FakeLinkedIn
from tests.fakes.meta import FakeMetaGraph
from tests.fakes.saleor_check import FakeSaleor, saleor_schema
from tests.fakes.wire import COGNITO_SCOPE, LWA_SCOPE

# Test ids: the provider, and for Amazon the credential generation (2.x Cognito, 3.x LWA).
CONNECTORS = [
    "google_ads",
    "meta_ads",
    "linkedin_ads",
    "amazon_creators_2x",
    "amazon_creators_3x",
    "saleor",
]


@dataclass(frozen=True)
class Fakes:
    google: FakeGoogleAds
    meta: FakeMetaGraph
    linkedin: FakeLinkedIn
    amazon: FakeAmazonCreators
    saleor: FakeSaleor

    def all(self) -> tuple[Any, ...]:
        return (self.google, self.meta, self.linkedin, self.amazon, self.saleor)


@pytest.fixture(scope="module")
def servers() -> Iterator[Fakes]:
    with (
        FakeGoogleAds() as google,
        FakeMetaGraph() as meta,
        FakeLinkedIn() as linkedin,
        FakeAmazonCreators() as amazon,
        FakeSaleor() as saleor,
    ):
        yield Fakes(google, meta, linkedin, amazon, saleor)


@pytest.fixture
def fakes(servers: Fakes) -> Fakes:
    for fake in servers.all():
        fake.reset()
    return servers


def point_at(settings: Settings, fakes: Fakes) -> Settings:
    # model_copy does not validate: plain strings for the URL fields. The fakes listen on
    # 127.0.0.1, so tenant URLs (Saleor) may name a loopback address here.
    return settings.model_copy(
        update={
            "allow_internal_urls": True,
            "google_oauth_url": fakes.google.token_url,
            "google_ads_api_url": fakes.google.api_url,
            "meta_graph_url": fakes.meta.graph_url,
            "linkedin_api_url": fakes.linkedin.api_url,
            "amazon_lwa_url": fakes.amazon.lwa_url,
            "amazon_cognito_urls": {"2.1": fakes.amazon.cognito_url},
        }
    )


@pytest.fixture
def pointed(settings: Settings, fakes: Fakes) -> Settings:
    return point_at(settings, fakes)


def closed_port() -> int:
    """A local port nothing listens on: connecting to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex}"


def digits() -> str:
    return str(uuid.uuid4().int)[:10]


def provider_of(connector: str) -> Provider:
    return Provider(connector.removesuffix("_2x").removesuffix("_3x"))


async def run(
    http: httpx.AsyncClient, connector: str, secret: dict[str, Any], settings: Settings
) -> CheckResult:
    """The check as opshub runs it: on the secret in its stored (validated) form."""
    provider = provider_of(connector)
    stored = validate_secret(provider, secret, allow_internal_urls=settings.allow_internal_urls)
    return await health.check(http, provider=provider, secret=stored, settings=settings)


# -- scenarios per connector ------------------------------------------------------------------


def valid_secret(connector: str, fakes: Fakes) -> dict[str, Any]:
    """A credential the provider's fake accepts, every value unique to this call."""
    match connector:
        case "google_ads":
            secret = {
                "client_id": unique("1234-") + ".apps.googleusercontent.com",
                "client_secret": unique("GOCSPX-"),
                "refresh_token": unique("1//0g"),
                "developer_token": unique("devtok-"),
                "login_customer_id": digits(),
                "customer_id": digits(),
            }
            fakes.google.add_client(secret["client_id"], secret["client_secret"])
            fakes.google.refresh_tokens.add(secret["refresh_token"])
            known = fakes.google.developer_tokens or set()
            fakes.google.developer_tokens = {*known, secret["developer_token"]}
        case "meta_ads":
            secret = {
                "access_token": unique("EAAB"),
                "ad_account_id": f"act_{digits()}",
                "app_secret": unique("appsecret-"),
            }
            fakes.meta.add_token(secret["access_token"], name="Acme Ads")
        case "linkedin_ads":
            secret = {"access_token": unique("AQV"), "ad_account_id": digits()}
            fakes.linkedin.add_account(int(secret["ad_account_id"]))
            fakes.linkedin.add_token(secret["access_token"], [int(secret["ad_account_id"])])
        case "amazon_creators_2x" | "amazon_creators_3x":
            version = "2.1" if connector.endswith("_2x") else "3.0"
            secret = {
                "client_id": unique("amzn1.application-oa2-client."),
                "client_secret": unique("amzn1.oa2-cs.v1."),
                "partner_tag": "opshub-20",
                "credential_version": version,
            }
            fakes.amazon.add_client(secret["client_id"], secret["client_secret"], version)
        case "saleor":
            secret = {"url": fakes.saleor.url, "token": unique("eyJhbGciOiJSUzI1NiJ9.")}
            fakes.saleor.tokens.add(secret["token"])
        case _:
            raise AssertionError(connector)
    return secret


def refused_secret(connector: str, fakes: Fakes) -> dict[str, Any]:
    """A credential the provider refuses, the way it most often goes bad."""
    secret = valid_secret(connector, fakes)
    match connector:
        case "google_ads":  # the refresh token was revoked: invalid_grant
            fakes.google.refresh_tokens.discard(secret["refresh_token"])
        case "meta_ads":  # an expired token: 190 / 463
            fakes.meta.expired_tokens.add(secret["access_token"])
        case "linkedin_ads":  # an expired token: 401 / 65602
            fakes.linkedin.expired_tokens.add(secret["access_token"])
        case "amazon_creators_2x" | "amazon_creators_3x":  # a rotated client secret: 401
            secret["client_secret"] = unique("amzn1.oa2-cs.v1.old-")
        case "saleor":  # a token Saleor does not know: anonymous to it
            fakes.saleor.tokens.discard(secret["token"])
    return secret


def throttle(connector: str, fakes: Fakes) -> None:
    """The provider's next answer on the check's route is its throttling answer."""
    match connector:
        case "google_ads":
            fakes.google.script_error(429, retry_delay="40s")
        case "meta_ads":
            fakes.meta.script_error(17)  # HTTP 400, code 17
        case "linkedin_ads":
            fakes.linkedin.script_error(429)
        case "amazon_creators_2x":
            fakes.amazon.script_error(429, route="cognito_token")
        case "amazon_creators_3x":
            fakes.amazon.script_error(429, route="lwa_token")
        case "saleor":
            fakes.saleor.script_http_error(429, {"errors": [{"message": "Too many requests"}]})


def down(
    connector: str, settings: Settings, secret: dict[str, Any]
) -> tuple[Settings, dict[str, Any]]:
    """Settings and secret with every URL the check calls on a port nothing listens on."""
    dead = f"http://127.0.0.1:{closed_port()}"
    settings = settings.model_copy(
        update={
            "google_oauth_url": f"{dead}/token",
            "google_ads_api_url": f"{dead}/v26",
            "meta_graph_url": f"{dead}/v26.0",
            "linkedin_api_url": f"{dead}/rest",
            "amazon_lwa_url": f"{dead}/auth/o2/token",
            "amazon_cognito_urls": {"2.1": f"{dead}/oauth2/token"},
        }
    )
    if connector == "saleor":
        secret = {**secret, "url": f"{dead}/graphql/"}
    return settings, secret


def assert_no_secret_in(result: CheckResult, *secrets: dict[str, Any]) -> None:
    detail = result.detail or ""
    for secret in secrets:
        for name, value in secret.items():
            assert str(value) not in detail, f"{name} leaked into the detail: {detail!r}"


# -- the four outcomes, for every connector ---------------------------------------------------


@pytest.mark.parametrize("connector", CONNECTORS)
async def test_a_valid_credential_is_healthy(
    http: httpx.AsyncClient, fakes: Fakes, pointed: Settings, connector: str
) -> None:
    secret = valid_secret(connector, fakes)

    result = await run(http, connector, secret, pointed)

    assert result == CheckResult(Health.healthy), result


@pytest.mark.parametrize("connector", CONNECTORS)
async def test_a_refused_credential_is_invalid(
    http: httpx.AsyncClient, fakes: Fakes, pointed: Settings, connector: str
) -> None:
    secret = refused_secret(connector, fakes)

    result = await run(http, connector, secret, pointed)

    assert result.status is Health.invalid, result


@pytest.mark.parametrize("connector", CONNECTORS)
async def test_a_throttled_credential_is_rate_limited(
    http: httpx.AsyncClient, fakes: Fakes, pointed: Settings, connector: str
) -> None:
    secret = valid_secret(connector, fakes)
    throttle(connector, fakes)

    result = await run(http, connector, secret, pointed)

    assert result.status is Health.rate_limited, result
    assert all(f.pending(route) == 0 for f in fakes.all() for *_, route in f.ROUTES)


@pytest.mark.parametrize("connector", CONNECTORS)
async def test_a_provider_that_is_down_is_unreachable(
    http: httpx.AsyncClient, fakes: Fakes, pointed: Settings, connector: str
) -> None:
    settings, secret = down(connector, pointed, valid_secret(connector, fakes))

    result = await run(http, connector, secret, settings)

    assert result.status is Health.unreachable, result
    assert all(f.requests == [] for f in fakes.all())


@pytest.mark.parametrize("connector", CONNECTORS)
async def test_no_check_detail_holds_a_secret_value(
    http: httpx.AsyncClient, fakes: Fakes, pointed: Settings, connector: str
) -> None:
    valid = valid_secret(connector, fakes)
    refused = refused_secret(connector, fakes)
    results = [
        await run(http, connector, valid, pointed),
        await run(http, connector, refused, pointed),
    ]
    throttle(connector, fakes)
    results.append(await run(http, connector, valid, pointed))
    dead_settings, dead_secret = down(connector, pointed, valid)
    results.append(await run(http, connector, dead_secret, dead_settings))

    assert [r.status for r in results] == [
        Health.healthy,
        Health.invalid,
        Health.rate_limited,
        Health.unreachable,
    ]
    issued = {f"issued {i}": t for i, t in enumerate([*fakes.google.issued, *fakes.amazon.issued])}
    for result in results:
        assert_no_secret_in(result, valid, refused, issued)


# -- Google Ads ---------------------------------------------------------------------------------


async def test_google_check_sends_the_refreshed_token_and_the_ads_headers(
    http: httpx.AsyncClient, fakes: Fakes, pointed: Settings
) -> None:
    secret = valid_secret("google_ads", fakes)

    result = await run(http, "google_ads", secret, pointed)

    assert result.status is Health.healthy, result
    (refresh,) = fakes.google.requests_for("token")
    assert refresh.content_type == "application/x-www-form-urlencoded"
    assert refresh.body == {
        "grant_type": "refresh_token",
        "client_id": secret["client_id"],
        "client_secret": secret["client_secret"],
        "refresh_token": secret["refresh_token"],
    }
    (issued,) = fakes.google.issued
    (call,) = fakes.google.requests_for("list_accessible_customers")
    assert call.path == "/v26/customers:listAccessibleCustomers"
    assert call.headers["authorization"] == f"Bearer {issued}"
    assert call.headers["developer-token"] == secret["developer_token"]
    assert call.headers["login-customer-id"] == secret["login_customer_id"]


@pytest.mark.parametrize(
    "refusal", ["revoked_refresh_token", "wrong_client_secret", "developer_token", "no_access"]
)
async def test_every_google_refusal_is_invalid(
    http: httpx.AsyncClient, fakes: Fakes, pointed: Settings, refusal: str
) -> None:
    secret = valid_secret("google_ads", fakes)
    if refusal == "revoked_refresh_token":  # token endpoint: 400 invalid_grant
        fakes.google.refresh_tokens.clear()
    elif refusal == "wrong_client_secret":  # token endpoint: 401 invalid_client
        secret["client_secret"] = unique("GOCSPX-old-")
    elif refusal == "developer_token":  # Ads API: 401 DEVELOPER_TOKEN_INVALID
        fakes.google.developer_tokens = {unique("other-")}
    else:  # Ads API: 403 PERMISSION_DENIED
        fakes.google.script_error(403)

    result = await run(http, "google_ads", secret, pointed)

    assert result.status is Health.invalid, result


# -- Meta ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (17, Health.rate_limited),
        (80004, Health.rate_limited),
        (190, Health.invalid),
        (1, Health.unreachable),
    ],
)
async def test_meta_200_carrying_an_error_is_not_healthy(
    http: httpx.AsyncClient, fakes: Fakes, pointed: Settings, code: int, expected: Health
) -> None:
    secret = valid_secret("meta_ads", fakes)
    fakes.meta.script_error(code, status=200)

    result = await run(http, "meta_ads", secret, pointed)

    assert result.status is not Health.healthy
    assert result.status is expected, result


async def test_meta_check_reads_me_with_the_token_as_a_parameter(
    http: httpx.AsyncClient, fakes: Fakes, pointed: Settings
) -> None:
    secret = valid_secret("meta_ads", fakes)

    await run(http, "meta_ads", secret, pointed)

    (call,) = fakes.meta.requests_for("me")
    assert call.path == "/v26.0/me"
    assert call.params["access_token"] == secret["access_token"]


# -- LinkedIn -----------------------------------------------------------------------------------


async def test_linkedin_check_sends_the_version_from_settings(
    http: httpx.AsyncClient, fakes: Fakes, pointed: Settings
) -> None:
    secret = valid_secret("linkedin_ads", fakes)
    settings = pointed.model_copy(update={"linkedin_version": "202609"})

    result = await run(http, "linkedin_ads", secret, settings)

    assert result.status is Health.healthy, result
    (call,) = fakes.linkedin.requests_for("ad_account")
    assert call.path == f"/rest/adAccounts/{secret['ad_account_id']}"
    assert call.headers["linkedin-version"] == "202609"
    assert call.headers["x-restli-protocol-version"] == "2.0.0"
    assert call.headers["authorization"] == f"Bearer {secret['access_token']}"


async def test_a_sunset_linkedin_version_is_not_blamed_on_the_credential(
    http: httpx.AsyncClient, fakes: Fakes, pointed: Settings
) -> None:
    secret = valid_secret("linkedin_ads", fakes)
    settings = pointed.model_copy(update={"linkedin_version": "202409"})  # answers 426

    result = await run(http, "linkedin_ads", secret, settings)

    assert result.status not in (Health.healthy, Health.invalid), result


# -- Amazon Creators ----------------------------------------------------------------------------


async def test_amazon_2x_credential_uses_cognito_with_a_form_and_the_slash_scope(
    http: httpx.AsyncClient, fakes: Fakes, pointed: Settings
) -> None:
    secret = valid_secret("amazon_creators_2x", fakes)

    result = await run(http, "amazon_creators_2x", secret, pointed)

    assert result.status is Health.healthy, result
    assert fakes.amazon.requests_for("lwa_token") == []
    (call,) = fakes.amazon.requests_for("cognito_token")
    assert call.content_type == "application/x-www-form-urlencoded"
    assert call.body == {
        "grant_type": "client_credentials",
        "client_id": secret["client_id"],
        "client_secret": secret["client_secret"],
        "scope": COGNITO_SCOPE,
    }
    assert COGNITO_SCOPE == "creatorsapi/default"


async def test_amazon_3x_credential_uses_lwa_with_json_and_the_double_colon_scope(
    http: httpx.AsyncClient, fakes: Fakes, pointed: Settings
) -> None:
    secret = valid_secret("amazon_creators_3x", fakes)

    result = await run(http, "amazon_creators_3x", secret, pointed)

    assert result.status is Health.healthy, result
    assert fakes.amazon.requests_for("cognito_token") == []
    (call,) = fakes.amazon.requests_for("lwa_token")
    assert call.content_type == "application/json"
    assert call.body == {
        "grant_type": "client_credentials",
        "client_id": secret["client_id"],
        "client_secret": secret["client_secret"],
        "scope": LWA_SCOPE,
    }
    assert LWA_SCOPE == "creatorsapi::default"


async def test_a_2_2_amazon_credential_asks_its_own_regions_pool(
    http: httpx.AsyncClient, fakes: Fakes, pointed: Settings
) -> None:
    # external-apis.md: 2.x credentials get their token from a Cognito pool *per region*; the
    # 2.1 (NA) pool does not know 2.2 (EU) clients, so asking it would call a good key invalid.
    secret = {
        "client_id": unique("amzn1.application-oa2-client."),
        "client_secret": unique("amzn1.oa2-cs.v1."),
        "partner_tag": "opshub-21",
        "credential_version": "2.2",
        "marketplace": "www.amazon.de",
    }
    with FakeAmazonCreators(cognito_versions=("2.2",)) as eu_pool:
        eu_pool.add_client(secret["client_id"], secret["client_secret"], version="2.2")
        regional = pointed.model_copy(
            update={
                "amazon_cognito_urls": {
                    "2.1": fakes.amazon.cognito_url,
                    "2.2": eu_pool.cognito_url,
                }
            }
        )
        result = await run(http, "amazon_creators", secret, regional)
        asked_eu = len(eu_pool.requests)

    assert result.status is Health.healthy
    assert asked_eu == 1 and not fakes.amazon.requests


# -- Saleor -------------------------------------------------------------------------------------


async def test_the_saleor_probe_is_valid_against_the_real_3_20_schema(
    http: httpx.AsyncClient, fakes: Fakes, pointed: Settings
) -> None:
    assert graphql.validate(saleor_schema(), graphql.parse(SALEOR_PROBE)) == []
    secret = valid_secret("saleor", fakes)

    result = await run(http, "saleor", secret, pointed)

    assert result.status is Health.healthy, result
    (call,) = fakes.saleor.requests_for("graphql")
    assert call.body == {"query": SALEOR_PROBE}
    assert call.headers["authorization"] == f"Bearer {secret['token']}"


async def test_the_fake_saleor_refuses_a_document_the_schema_does_not_allow(
    http: httpx.AsyncClient, fakes: Fakes
) -> None:
    # What makes the probe test above mean something: an invalid document would be a 400.
    response = await http.post(fakes.saleor.url, json={"query": "{ shop { nme } }"})

    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["message"] == "Cannot query field 'nme' on type 'Shop'. Did you mean 'name'?"
    assert "data" not in response.json()


# -- the fakes refuse what the real APIs refuse -------------------------------------------------


async def test_the_fakes_refuse_malformed_calls_like_the_real_apis(
    http: httpx.AsyncClient, fakes: Fakes
) -> None:
    google = valid_secret("google_ads", fakes)
    no_grant = {k: google[k] for k in ("client_id", "client_secret", "refresh_token")}
    token = await http.post(fakes.google.token_url, data=no_grant)
    assert (token.status_code, token.json()["error"]) == (400, "unsupported_grant_type")

    linkedin = valid_secret("linkedin_ads", fakes)
    no_version = await http.get(
        f"{fakes.linkedin.api_url}/adAccounts/{linkedin['ad_account_id']}",
        headers={
            "Authorization": f"Bearer {linkedin['access_token']}",
            "X-Restli-Protocol-Version": "2.0.0",
        },
    )
    assert (no_version.status_code, no_version.json()["code"]) == (400, "VERSION_MISSING")

    amazon = valid_secret("amazon_creators_3x", fakes)
    wrong_scope = await http.post(
        fakes.amazon.lwa_url,
        json={
            "grant_type": "client_credentials",
            "client_id": amazon["client_id"],
            "client_secret": amazon["client_secret"],
            "scope": COGNITO_SCOPE,
        },
    )
    assert wrong_scope.status_code == 400
    assert wrong_scope.json()["fieldList"][0]["name"] == "scope"


# -- end to end through the API -----------------------------------------------------------------


@pytest.fixture(scope="module")
async def hub(settings: Settings, urls: DatabaseUrls, servers: Fakes) -> AsyncIterator[FastAPI]:
    application = create_app(point_at(settings, servers), urls)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def api(hub: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=hub), base_url="http://opshub") as c:
        yield c


@pytest.mark.parametrize("expired", [False, True], ids=["valid_token", "expired_token"])
async def test_saving_a_meta_token_through_the_api_records_its_health(
    api: AsyncClient, fakes: Fakes, tenant_a: TenantHandle, expired: bool
) -> None:
    secret = valid_secret("meta_ads", fakes)
    if expired:
        fakes.meta.expired_tokens.add(secret["access_token"])
    expected = "invalid" if expired else "healthy"

    response = await api.put(
        "/v1/credentials/meta_ads", json={"secret": secret}, headers=tenant_a.headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["status"] == expected
    (call,) = fakes.meta.requests_for("me")
    assert call.params["access_token"] == secret["access_token"]
    listing = await api.get("/v1/credentials", headers=tenant_a.headers)
    entry = next(e for e in listing.json() if e["provider"] == "meta_ads")
    assert entry["status"] == expected
    for value in secret.values():
        assert value not in response.text and value not in listing.text


async def test_a_saleor_app_token_is_recognised_by_the_probe(
    http: httpx.AsyncClient, fakes: Fakes, pointed: Settings
) -> None:
    app_token = unique("app-token-")
    fakes.saleor.app_tokens.add(app_token)
    secret = {"url": fakes.saleor.url, "token": app_token}

    result = await run(http, "saleor", secret, pointed)

    assert result.status is Health.healthy


async def test_a_token_saleor_treats_as_anonymous_is_not_healthy(
    http: httpx.AsyncClient, fakes: Fakes, pointed: Settings
) -> None:
    # A public field answers anonymous callers too; the probe asks who the token is.
    secret = valid_secret("saleor", fakes)
    fakes.saleor.script(
        "graphql",
        200,
        {"data": {"me": None, "app": None}, "errors": [{"message": "PermissionDenied"}]},
    )

    result = await run(http, "saleor", secret, pointed)

    assert result.status is Health.invalid


async def test_the_saleor_check_says_whether_the_token_expired_or_is_unknown(
    http: httpx.AsyncClient, fakes: Fakes, pointed: Settings
) -> None:
    expired = valid_secret("saleor", fakes)
    fakes.saleor.tokens.discard(expired["token"])
    fakes.saleor.expired_tokens.add(expired["token"])
    unknown = refused_secret("saleor", fakes)

    stale = await run(http, "saleor", expired, pointed)
    stranger = await run(http, "saleor", unknown, pointed)

    assert (stale.status, stranger.status) == (Health.invalid, Health.invalid)
    assert stale.detail is not None and "expired" in stale.detail and "App token" in stale.detail
    assert stranger.detail is not None and "does not recognise the token" in stranger.detail
    assert_no_secret_in(stale, expired)
    assert_no_secret_in(stranger, unknown)
