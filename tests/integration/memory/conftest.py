"""The real local embedding model, loaded once, and a memory bound to a tenant."""

from __future__ import annotations

import asyncpg
import pytest

from opshub.config import Settings
from opshub.credentials.resolver import CredentialResolver
from opshub.credentials.store import open_secret_store
from opshub.memory.embedders import Embedders
from opshub.memory.indexes import IndexBuilder
from opshub.memory.run_memory import TenantMemory
from tests.conftest import TenantHandle


@pytest.fixture(scope="session")
def embedders(settings: Settings, app_pool: asyncpg.Pool) -> Embedders:
    resolver = CredentialResolver(
        pool=app_pool, store=open_secret_store(settings), settings=settings
    )
    return Embedders(resolver=resolver, settings=settings)


@pytest.fixture
def memory_of(app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, embedders: Embedders):  # type: ignore[no-untyped-def]
    def bind(tenant: TenantHandle, *, index_threshold: int = 1_000) -> TenantMemory:
        return TenantMemory(
            app_pool=app_pool,
            tenant_id=tenant.id,
            embedders=embedders,
            index_builder=IndexBuilder(owner_pool=owner_pool, threshold=index_threshold),
        )

    return bind
