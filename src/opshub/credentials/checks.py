"""Each provider's cheapest authenticated call, and what its answer says about the credential.

Wire shapes are those of specs/external-apis.md. A check answers healthy, invalid (the provider
refused the credential), rate_limited or unreachable, with a detail that never holds a secret.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from opshub.config import Settings
from opshub.credentials.models import Health, Provider

ANTHROPIC_VERSION = "2023-06-01"
META_THROTTLING = {4, 17, 32, 613, 80000, 80003, 80004}
META_INVALID_TOKEN = 190
# `me` answers a staff token and `app` an app token; an anonymous caller gets neither, so a
# public field would pass for any token Saleor does not recognise.
MAX_REASON_CHARS = 300
SALEOR_PROBE = "query OpshubCredentialCheck { me { id } app { id } }"


@dataclass(frozen=True)
class CheckResult:
    status: Health
    detail: str | None = None


HEALTHY = CheckResult(Health.healthy)


def from_status(code: int) -> CheckResult:
    if code < 300:
        return HEALTHY
    if code in (400, 401, 403):
        return CheckResult(Health.invalid, f"the provider refused the credential ({code})")
    if code == 429:
        return CheckResult(Health.rate_limited, "the provider is rate limiting this credential")
    return CheckResult(Health.unreachable, f"the provider answered {code}")


def from_response(response: httpx.Response, secret: dict[str, Any]) -> CheckResult:
    """``from_status``, with the provider's own words when it refuses the credential: "invalid"
    alone doesn't tell an expired key from one without access to the model."""
    result = from_status(response.status_code)
    reason = _reason(response, secret) if result.status is Health.invalid else None
    return CheckResult(result.status, f"{result.detail}: {reason}") if reason else result


def _reason(response: httpx.Response, secret: dict[str, Any]) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    found = (
        error.get("message")
        if isinstance(error, dict)
        else body.get("error_description") or body.get("message") or error
    )
    if not isinstance(found, str) or not found.strip():
        return None
    reason = " ".join(found.split())
    # Providers quote the key back (OpenAI masks it, others may not): none of it is kept.
    for value in secret.values():
        if isinstance(value, str) and len(value) >= 4:
            reason = reason.replace(value, "***")
    return reason[:MAX_REASON_CHARS]


Check = Callable[[httpx.AsyncClient, dict[str, Any], Settings], Awaitable[CheckResult]]


async def _openai(client: httpx.AsyncClient, secret: dict[str, Any], s: Settings) -> CheckResult:
    headers = {"Authorization": f"Bearer {secret['api_key']}"}
    return from_response(await client.get(f"{s.openai_base_url}/models", headers=headers), secret)


async def _openai_compatible(
    client: httpx.AsyncClient, secret: dict[str, Any], _: Settings
) -> CheckResult:
    headers = {"Authorization": f"Bearer {secret['api_key']}"} if "api_key" in secret else {}
    url = f"{str(secret['base_url']).rstrip('/')}/models"
    return from_response(await client.get(url, headers=headers), secret)


async def _anthropic(client: httpx.AsyncClient, secret: dict[str, Any], s: Settings) -> CheckResult:
    headers = {"x-api-key": secret["api_key"], "anthropic-version": ANTHROPIC_VERSION}
    url = f"{s.anthropic_base_url}/v1/models"
    return from_response(await client.get(url, headers=headers), secret)


async def _google_ads(
    client: httpx.AsyncClient, secret: dict[str, Any], s: Settings
) -> CheckResult:
    token = await client.post(
        s.google_oauth_url,
        data={
            "grant_type": "refresh_token",
            "client_id": secret["client_id"],
            "client_secret": secret["client_secret"],
            "refresh_token": secret["refresh_token"],
        },
    )
    if token.status_code != 200:
        return from_response(token, secret)
    headers = {
        "Authorization": f"Bearer {token.json()['access_token']}",
        "developer-token": secret["developer_token"],
        "login-customer-id": secret["login_customer_id"],
    }
    url = f"{s.google_ads_api_url}/customers:listAccessibleCustomers"
    return from_response(await client.get(url, headers=headers), secret)


async def _meta_ads(client: httpx.AsyncClient, secret: dict[str, Any], s: Settings) -> CheckResult:
    response = await client.get(
        f"{s.meta_graph_url}/me", params={"access_token": secret["access_token"]}
    )
    error = response.json().get("error") if response.content else None
    if not error:
        return from_status(response.status_code)
    # Meta keys off error.code, and a 200 carrying an error is a failure too.
    code = error.get("code")
    if code in META_THROTTLING:
        return CheckResult(Health.rate_limited, f"Meta is throttling this token (code {code})")
    if code == META_INVALID_TOKEN or response.status_code in (400, 401, 403):
        return CheckResult(Health.invalid, f"Meta refused the token (code {code})")
    return CheckResult(Health.unreachable, f"Meta answered with error code {code}")


async def _linkedin_ads(
    client: httpx.AsyncClient, secret: dict[str, Any], s: Settings
) -> CheckResult:
    headers = {
        "Authorization": f"Bearer {secret['access_token']}",
        "LinkedIn-Version": s.linkedin_version,
        "X-Restli-Protocol-Version": "2.0.0",
    }
    url = f"{s.linkedin_api_url}/adAccounts/{secret['ad_account_id']}"
    return from_response(await client.get(url, headers=headers), secret)


async def _amazon_creators(
    client: httpx.AsyncClient, secret: dict[str, Any], s: Settings
) -> CheckResult:
    grant = {
        "grant_type": "client_credentials",
        "client_id": secret["client_id"],
        "client_secret": secret["client_secret"],
    }
    version = str(secret.get("credential_version", "3.0"))
    if version.startswith("2."):
        # Credential version 2.x: a Cognito pool per region, form-encoded, scope with a slash.
        url = s.amazon_cognito_urls.get(version)
        if url is None:
            return CheckResult(Health.unreachable, f"no token endpoint for version {version}")
        response = await client.post(url, data={**grant, "scope": "creatorsapi/default"})
    else:
        response = await client.post(
            s.amazon_lwa_url, json={**grant, "scope": "creatorsapi::default"}
        )
    return from_response(response, secret)


async def _saleor(client: httpx.AsyncClient, secret: dict[str, Any], _: Settings) -> CheckResult:
    response = await client.post(
        str(secret["url"]),
        json={"query": SALEOR_PROBE},
        headers={"Authorization": f"Bearer {secret['token']}"},
    )
    if response.status_code != 200:
        return from_status(response.status_code)
    body = response.json()
    data = body.get("data") or {}
    if data.get("me") or data.get("app"):
        return HEALTHY
    # Saleor answers an expired JWT with a GraphQL error (HTTP 200), an unknown token as if
    # there were none (anonymous).
    if any("expired" in str(e.get("message")).lower() for e in body.get("errors") or []):
        return CheckResult(
            Health.invalid,
            "the token has expired: Saleor's staff tokens last 5 minutes; store an App token",
        )
    return CheckResult(
        Health.invalid,
        "Saleor does not recognise the token: it is unknown to this shop or was deleted",
    )


CHECKS: dict[Provider, Check] = {
    Provider.openai: _openai,
    Provider.anthropic: _anthropic,
    Provider.openai_compatible: _openai_compatible,
    Provider.google_ads: _google_ads,
    Provider.meta_ads: _meta_ads,
    Provider.linkedin_ads: _linkedin_ads,
    Provider.amazon_creators: _amazon_creators,
    Provider.saleor: _saleor,
}
