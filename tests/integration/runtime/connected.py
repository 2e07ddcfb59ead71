"""Tenants' connections to the fake shop, ad platforms and Amazon, stored through the API.

Each ``connect_*`` gives the tenant its own account in the fake and stores the matching
credential with ``PUT /v1/credentials/{provider}``, as a tenant would.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from httpx import AsyncClient

from tests.conftest import TenantHandle
from tests.fakes.amazon import FakeAmazonCreators
from tests.fakes.google_ads import FakeGoogleAds
from tests.fakes.linkedin import FakeLinkedIn
from tests.fakes.meta import FakeMetaGraph
from tests.fakes.saleor import FakeSaleorServer


def _digits(n: int) -> str:
    return str(uuid.uuid4().int)[:n]


@dataclass(frozen=True)
class Connected:
    google: FakeGoogleAds
    meta: FakeMetaGraph
    linkedin: FakeLinkedIn
    amazon: FakeAmazonCreators

    def settings(self) -> dict[str, Any]:
        return {
            "google_oauth_url": self.google.token_url,
            "google_ads_api_url": self.google.api_url,
            "meta_graph_url": self.meta.graph_url,
            "linkedin_api_url": self.linkedin.api_url,
            "amazon_lwa_url": self.amazon.lwa_url,
            "amazon_creators_api_url": self.amazon.api_url,
        }


async def store(
    client: AsyncClient, tenant: TenantHandle, provider: str, secret: dict[str, Any]
) -> None:
    """Store the credential; saving checks it against the fake, which must find it healthy."""
    response = await client.put(
        f"/v1/credentials/{provider}", json={"secret": secret}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "healthy", response.json()


async def connect_saleor(
    client: AsyncClient, tenant: TenantHandle, shop: FakeSaleorServer, token: str
) -> None:
    await store(client, tenant, "saleor", {"url": shop.url, "token": token})


async def connect_google(
    client: AsyncClient, tenant: TenantHandle, google: FakeGoogleAds, *, currency: str = "USD"
) -> str:
    """Returns the tenant's customer id."""
    secret = {
        "client_id": f"{uuid.uuid4().hex}.apps.googleusercontent.com",
        "client_secret": f"GOCSPX-{uuid.uuid4().hex}",
        "refresh_token": f"1//0g{uuid.uuid4().hex}",
        "developer_token": f"devtok-{uuid.uuid4().hex}",
        "login_customer_id": _digits(10),
        "customer_id": _digits(10),
    }
    google.add_client(secret["client_id"], secret["client_secret"])
    google.refresh_tokens.add(secret["refresh_token"])
    google.add_customer(
        secret["customer_id"], currency=currency, refresh_tokens=[secret["refresh_token"]]
    )
    await store(client, tenant, "google_ads", secret)
    return secret["customer_id"]


async def connect_meta(
    client: AsyncClient, tenant: TenantHandle, meta: FakeMetaGraph, *, currency: str = "USD"
) -> tuple[str, str]:
    """Returns the tenant's ad account id and access token."""
    account, token = _digits(12), f"EAAB{uuid.uuid4().hex}"
    meta.add_token(token)
    meta.add_ad_account(account, currency=currency, tokens=[token])
    await store(
        client, tenant, "meta_ads", {"access_token": token, "ad_account_id": f"act_{account}"}
    )
    return account, token


async def connect_linkedin(
    client: AsyncClient, tenant: TenantHandle, linkedin: FakeLinkedIn, *, currency: str = "USD"
) -> int:
    account, token = int(_digits(9)), f"AQV{uuid.uuid4().hex}"
    linkedin.add_account(account, currency=currency)
    linkedin.add_token(token, [account])
    await store(
        client, tenant, "linkedin_ads", {"access_token": token, "ad_account_id": str(account)}
    )
    return account


async def connect_amazon(
    client: AsyncClient, tenant: TenantHandle, amazon: FakeAmazonCreators
) -> dict[str, Any]:
    secret = {
        "client_id": f"amzn1.application-oa2-client.{uuid.uuid4().hex}",
        "client_secret": f"amzn1.oa2-cs.v1.{uuid.uuid4().hex}",
        "partner_tag": f"shop{uuid.uuid4().hex[:6]}-20",
        "credential_version": "3.0",
        "marketplace": "www.amazon.com",
    }
    amazon.add_client(
        secret["client_id"], secret["client_secret"], "3.0", partner_tag=secret["partner_tag"]
    )
    await store(client, tenant, "amazon_creators", secret)
    return secret
