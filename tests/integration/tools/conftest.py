"""The crews' tools called directly, as CrewAI calls them: from a worker thread, for one tenant,
their coroutines served by the test's own event loop.

Each tool gets a real ``ToolContext``: the session's PostgreSQL (``app_pool``, bound by RLS), a
``CredentialResolver`` over the real secret store, a real ``httpx.AsyncClient`` and the fakes
standing in for the shop, the ad platforms and Amazon. Tenants connect them as
``tests/integration/runtime/connected.py`` does, with their own account in each fake, but store
the credential through ``credentials.service.put`` (saving through the API would check it against
the platforms the app's settings name, which are not these fakes).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from crewai.tools import BaseTool

from opshub.config import Settings
from opshub.credentials import service as credentials_service
from opshub.credentials.models import Provider
from opshub.credentials.resolver import CredentialResolver
from opshub.credentials.store import SecretStore, open_secret_store
from opshub.db.engine import tenant_transaction
from opshub.tools.context import Connectors, ToolContext
from tests.conftest import TenantHandle
from tests.fakes.amazon import FakeAmazonCreators
from tests.fakes.google_ads import FakeGoogleAds
from tests.fakes.linkedin import FakeLinkedIn
from tests.fakes.meta import FakeMetaGraph
from tests.fakes.saleor import FakeSaleorServer
from tests.integration.runtime.connected import Connected

SHOP_TOKEN = "shop-staff-token-a1"


def _digits(n: int) -> str:
    return str(uuid.uuid4().int)[:n]


async def use(tool: BaseTool, **args: Any) -> str:
    """Call ``tool`` as CrewAI does (``run``: its args_schema first) from a worker thread."""
    answer: str = await asyncio.to_thread(tool.run, **args)
    return answer


async def use_directly(tool: BaseTool, **args: Any) -> str:
    """Call ``tool._run`` (what ``run`` calls once CrewAI's validation passed) from a thread."""
    answer: str = await asyncio.to_thread(tool._run, **args)
    return answer


def data(answer: str) -> Any:
    """A tool's JSON answer, read back."""
    return orjson.loads(answer)


@pytest.fixture(scope="session")
def platforms() -> Iterator[Connected]:
    """One fake per ad platform (and Amazon); each tenant gets its own account in them."""
    with (
        FakeGoogleAds() as google,
        FakeMetaGraph() as meta,
        FakeLinkedIn() as linkedin,
        FakeAmazonCreators() as amazon,
    ):
        yield Connected(google=google, meta=meta, linkedin=linkedin, amazon=amazon)


@pytest.fixture(scope="session")
def tool_settings(settings: Settings, platforms: Connected) -> Settings:
    return settings.model_copy(update={**platforms.settings(), "credential_cache_seconds": 0})


@pytest.fixture(scope="session")
def secret_store(tool_settings: Settings) -> SecretStore:
    return open_secret_store(tool_settings)


@pytest.fixture(scope="session")
def resolver(
    app_pool: asyncpg.Pool, secret_store: SecretStore, tool_settings: Settings
) -> CredentialResolver:
    return CredentialResolver(pool=app_pool, store=secret_store, settings=tool_settings)


@pytest.fixture
def shop() -> Iterator[FakeSaleorServer]:
    """A shop whose staff token is ``SHOP_TOKEN``, seeded with Saleor's small demo catalogue."""
    with FakeSaleorServer(tokens=(SHOP_TOKEN,)) as server:
        yield server


ContextFor = Callable[..., ToolContext]


@pytest.fixture
def context_for(
    app_pool: asyncpg.Pool,
    resolver: CredentialResolver,
    tool_settings: Settings,
    http: httpx.AsyncClient,
) -> ContextFor:
    """``context_for(tenant, task_id=None)``: what a run for ``tenant`` gives its tools."""

    def bind(tenant: TenantHandle, task_id: uuid.UUID | None = None) -> ToolContext:
        return ToolContext(
            tenant_id=tenant.id,
            app_pool=app_pool,
            loop=asyncio.get_running_loop(),
            task_id=task_id,
            connectors=Connectors(resolver=resolver, settings=tool_settings, http=http),
        )

    return bind


@dataclass(frozen=True)
class Connect:
    """Gives a tenant its own account in a fake and stores the matching credential."""

    app_pool: asyncpg.Pool
    store: SecretStore
    platforms: Connected

    async def credential(
        self, tenant: TenantHandle, provider: Provider, secret: dict[str, Any]
    ) -> None:
        async with tenant_transaction(self.app_pool, tenant.id) as conn:
            await credentials_service.put_credential(
                conn,
                store=self.store,
                tenant_id=tenant.id,
                provider=provider,
                secret=secret,
                label=None,
                allow_internal_urls=True,  # the fakes listen on loopback
            )

    async def saleor(
        self, tenant: TenantHandle, shop: FakeSaleorServer, token: str = SHOP_TOKEN
    ) -> None:
        await self.credential(tenant, Provider.saleor, {"url": shop.url, "token": token})

    async def google(self, tenant: TenantHandle, *, currency: str = "USD") -> str:
        """Returns the tenant's customer id."""
        google = self.platforms.google
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
        await self.credential(tenant, Provider.google_ads, secret)
        return secret["customer_id"]

    async def meta(self, tenant: TenantHandle, *, currency: str = "USD") -> tuple[str, str]:
        """Returns the tenant's ad account id and access token."""
        account, token = _digits(12), f"EAAB{uuid.uuid4().hex}"
        self.platforms.meta.add_token(token)
        self.platforms.meta.add_ad_account(account, currency=currency, tokens=[token])
        secret = {"access_token": token, "ad_account_id": f"act_{account}"}
        await self.credential(tenant, Provider.meta_ads, secret)
        return account, token

    async def linkedin(self, tenant: TenantHandle, *, currency: str = "USD") -> int:
        """Returns the tenant's ad account id (campaign ids are global in LinkedIn's fake)."""
        account, token = int(_digits(9)), f"AQV{uuid.uuid4().hex}"
        self.platforms.linkedin.add_account(account, currency=currency)
        self.platforms.linkedin.add_token(token, [account])
        secret = {"access_token": token, "ad_account_id": str(account)}
        await self.credential(tenant, Provider.linkedin_ads, secret)
        return account


@pytest.fixture
def connect(app_pool: asyncpg.Pool, secret_store: SecretStore, platforms: Connected) -> Connect:
    return Connect(app_pool=app_pool, store=secret_store, platforms=platforms)


async def make_task(
    owner_pool: asyncpg.Pool,
    tenant: TenantHandle,
    *,
    status: str = "running",
    input: str = "Shift budget to what works.",
    error: dict[str, str] | None = None,
) -> uuid.UUID:
    """A task made directly, never queued, so no worker picks it up: ``running`` for a run whose
    tools propose, ``failed`` (with ``error``) for one that is over."""
    finished = status in ("succeeded", "failed", "cancelled")
    async with owner_pool.acquire() as conn:
        task_id: uuid.UUID = await conn.fetchval(
            "INSERT INTO tasks (tenant_id, crew, input, status, error, attempt, started_at,"
            " finished_at) VALUES ($1, 'marketing', $2, $3, $4, 1, now(),"
            " CASE WHEN $5 THEN now() END) RETURNING id",
            tenant.id,
            input,
            status,
            error,
            finished,
        )
    return task_id
