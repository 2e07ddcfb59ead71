"""Where BYOK secrets live and how they are read back, against real services.

* the embedded backend: AES-GCM rows in PostgreSQL, data keys wrapped by a master keyring kept in
  a key file of the test's own (``tmp_path``), rotation of that keyring;
* Vault KV v2 on a real OpenBao dev server (``vault_addr``);
* the resolver (BYOK, platform keys, its cache, invalidation across processes through Redis);
* the health sweep over many tenants, against a provider stand-in started here.

Tests that act on every tenant's rows (rotation, the sweep) get a migrated database of their own.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import hvac
import pytest
from hvac.exceptions import InvalidPath
from pydantic import SecretStr
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from opshub.config import Settings
from opshub.credentials import health
from opshub.credentials import service as credentials_service
from opshub.credentials.envelope import MasterKeyring
from opshub.credentials.errors import (
    CredentialMissingError,
    CredentialStoreError,
)
from opshub.credentials.models import Health, Provider, Source
from opshub.credentials.resolver import INVALIDATION_CHANNEL, CredentialResolver
from opshub.credentials.store import DatabaseSecretStore, SecretStore, VaultSecretStore
from opshub.db.engine import DatabaseUrls, create_pool, tenant_transaction
from opshub.db.migrate import migrate
from tests.conftest import REDIS_URL, VAULT_TOKEN

# --- helpers ---------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def canary() -> str:
    return f"sk-canary-{uuid.uuid4()}"


TENANT_PREFIX = "credential-stores-test-"


async def new_tenant(owner_pool: asyncpg.Pool, plan: str = "standard") -> uuid.UUID:
    async with owner_pool.acquire() as conn:
        tenant_id: uuid.UUID = await conn.fetchval(
            "INSERT INTO tenants (name, plan) VALUES ($1, $2) RETURNING id",
            f"{TENANT_PREFIX}{uuid.uuid4().hex[:8]}",
            plan,
        )
    return tenant_id


@pytest.fixture(autouse=True)
async def drop_test_tenants(owner_pool: asyncpg.Pool) -> AsyncIterator[None]:
    """Rows left here in the shared database would not open with the app's own store (their
    keyrings were temporary, or they live in Vault, or were tampered with on purpose): remove
    the tenants made here, and with them their credentials and data keys."""
    yield
    async with owner_pool.acquire() as conn:
        await conn.execute("DELETE FROM tenants WHERE name LIKE $1", f"{TENANT_PREFIX}%")


async def put(
    pool: asyncpg.Pool,
    store: SecretStore,
    tenant_id: uuid.UUID,
    provider: Provider,
    secret: dict[str, Any],
) -> None:
    async with tenant_transaction(pool, tenant_id) as conn:
        await credentials_service.put_credential(
            conn, store=store, tenant_id=tenant_id, provider=provider, secret=secret, label=None
        )


async def read(
    pool: asyncpg.Pool, store: SecretStore, tenant_id: uuid.UUID, provider: Provider
) -> dict[str, Any] | None:
    async with tenant_transaction(pool, tenant_id) as conn:
        return await credentials_service.read_secret(
            conn, store=store, tenant_id=tenant_id, provider=provider
        )


async def delete(
    pool: asyncpg.Pool, store: SecretStore, tenant_id: uuid.UUID, provider: Provider
) -> None:
    async with tenant_transaction(pool, tenant_id) as conn:
        await credentials_service.delete_credential(
            conn, store=store, tenant_id=tenant_id, provider=provider
        )


def database_store(path: Path) -> DatabaseSecretStore:
    return DatabaseSecretStore(MasterKeyring.load(env_keys=None, path=path))


@pytest.fixture
def store(tmp_path: Path) -> DatabaseSecretStore:
    """An embedded-backend store with a keyring of its own (tenants here are new: their data
    keys are created under this ring)."""
    return database_store(tmp_path / "master_keys")


@dataclass
class Isolated:
    urls: DatabaseUrls
    owner_pool: asyncpg.Pool
    app_pool: asyncpg.Pool


@pytest.fixture
async def isolated(fresh_database: DatabaseUrls) -> AsyncIterator[Isolated]:
    """A migrated database of this test's own: no other test's tenants or data keys in it."""
    await migrate(fresh_database)
    owner_pool = await create_pool(fresh_database.owner, size=2)
    app_pool = await create_pool(fresh_database.app, size=6)
    try:
        yield Isolated(fresh_database, owner_pool, app_pool)
    finally:
        await app_pool.close()
        await owner_pool.close()


# --- the embedded (database) backend ---------------------------------------------------------


async def test_database_rows_hold_only_ciphertext(
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    owner_engine: AsyncEngine,
    store: DatabaseSecretStore,
) -> None:
    tenant = await new_tenant(owner_pool)
    key = canary()
    refresh = canary()
    await put(app_pool, store, tenant, Provider.openai, {"api_key": key})
    google = {
        "client_id": "cid-123",
        "client_secret": canary(),
        "refresh_token": refresh,
        "developer_token": canary(),
        "login_customer_id": "1234567890",
    }
    await put(app_pool, store, tenant, Provider.google_ads, google)

    async with owner_engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT backend, ciphertext FROM credentials WHERE tenant_id = :t"),
                {"t": tenant},
            )
        ).all()
        ciphertexts = (await conn.execute(text("SELECT ciphertext FROM credentials"))).scalars()
        dump = "\n".join(
            [
                *(await conn.execute(text("SELECT c::text FROM credentials c"))).scalars(),
                *(await conn.execute(text("SELECT k::text FROM tenant_data_keys k"))).scalars(),
            ]
        )
        blobs = [c for c in ciphertexts if c is not None]

    assert len(rows) == 2 and all(r.backend == "database" and r.ciphertext for r in rows)
    for needle in (key, refresh, google["client_secret"], google["developer_token"]):
        assert all(needle.encode() not in blob for blob in blobs)
        assert needle not in dump and needle.encode().hex() not in dump
    master = store.keyring.keys[0]
    assert master.hex() not in dump and master not in b"".join(blobs)
    assert await read(app_pool, store, tenant, Provider.openai) == {"api_key": key}
    assert await read(app_pool, store, tenant, Provider.google_ads) == google


async def test_a_ciphertext_moved_to_another_row_does_not_decrypt(
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    owner_engine: AsyncEngine,
    store: DatabaseSecretStore,
) -> None:
    tenant, other = await new_tenant(owner_pool), await new_tenant(owner_pool)
    key = canary()
    await put(app_pool, store, tenant, Provider.openai, {"api_key": key})
    await put(app_pool, store, tenant, Provider.anthropic, {"api_key": canary()})
    await put(app_pool, store, other, Provider.openai, {"api_key": canary()})

    async with owner_engine.begin() as conn:
        stolen = (
            await conn.execute(
                text("SELECT ciphertext FROM credentials WHERE tenant_id = :t AND provider = :p"),
                {"t": tenant, "p": "openai"},
            )
        ).scalar_one()
        for target, provider in ((tenant, "anthropic"), (other, "openai")):
            await conn.execute(
                text(
                    "UPDATE credentials SET ciphertext = :c WHERE tenant_id = :t AND provider = :p"
                ),
                {"c": stolen, "t": target, "p": provider},
            )

    # Same tenant (same data key) but another provider: the associated data differs.
    with pytest.raises(CredentialStoreError) as same_tenant:
        await read(app_pool, store, tenant, Provider.anthropic)
    # Another tenant's row.
    with pytest.raises(CredentialStoreError) as other_tenant:
        await read(app_pool, store, other, Provider.openai)
    for raised in (same_tenant, other_tenant):
        assert key not in str(raised.value)
    assert await read(app_pool, store, tenant, Provider.openai) == {"api_key": key}


async def test_rotating_the_master_key_keeps_every_secret_readable(
    isolated: Isolated, tmp_path: Path
) -> None:
    path = tmp_path / "master_keys"
    store = database_store(path)
    old_process = database_store(path)  # another process, started before the rotation
    first_id = store.keyring.current_id
    stored = {}
    for _ in range(3):
        tenant = await new_tenant(isolated.owner_pool)
        stored[tenant] = {"api_key": canary()}
        await put(isolated.app_pool, store, tenant, Provider.openai, stored[tenant])
    for tenant, secret in stored.items():
        assert await read(isolated.app_pool, old_process, tenant, Provider.openai) == secret

    current_ids = []
    for _ in range(2):
        async with isolated.owner_pool.acquire() as conn, conn.transaction():
            assert await store.rotate_master_key(conn) == 3
        current_ids.append(store.keyring.current_id)
        async with isolated.owner_pool.acquire() as conn:
            ids = {r["master_key_id"] for r in await conn.fetch("SELECT * FROM tenant_data_keys")}
        assert ids == {store.keyring.current_id}

        for tenant, secret in stored.items():
            assert await read(isolated.app_pool, store, tenant, Provider.openai) == secret
            # The old process meets a key id it doesn't know and re-reads the key file.
            assert await read(isolated.app_pool, old_process, tenant, Provider.openai) == secret
            # A process started after the rotation reads them too.
            fresh = database_store(path)
            assert await read(isolated.app_pool, fresh, tenant, Provider.openai) == secret

    assert len({first_id, *current_ids}) == 3
    assert old_process.keyring.current_id == current_ids[-1]
    assert path.read_text().split()[0] == store.keyring.keys[0].hex()
    assert len(path.read_text().split()) == 3


async def test_a_keyring_from_the_environment_reads_and_rotates_by_listing_keys(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    unused = tmp_path / "no-key-file"
    old_store = DatabaseSecretStore(MasterKeyring.load(env_keys=old.hex(), path=unused))
    tenant = await new_tenant(owner_pool)
    secret = {"api_key": canary()}
    await put(app_pool, old_store, tenant, Provider.anthropic, secret)

    # OPSHUB_MASTER_KEY="<new>,<old>": the new key is current, the old one still reads.
    env = f"{base64.b64encode(new).decode()},{old.hex()}"
    new_store = DatabaseSecretStore(MasterKeyring.load(env_keys=env, path=unused))
    assert await read(app_pool, new_store, tenant, Provider.anthropic) == secret

    later = await new_tenant(owner_pool)
    await put(app_pool, new_store, later, Provider.anthropic, secret)
    async with owner_pool.acquire() as conn:
        wrapped_by = await conn.fetchval(
            "SELECT master_key_id FROM tenant_data_keys WHERE tenant_id = $1", later
        )
    assert wrapped_by == new_store.keyring.current_id
    with pytest.raises(CredentialStoreError):
        await read(app_pool, old_store, later, Provider.anthropic)
    assert not unused.exists()


# --- Vault (OpenBao) -------------------------------------------------------------------------


@pytest.fixture
def vault_settings(settings: Settings, vault_addr: str) -> Settings:
    return settings.model_copy(
        update={"vault_addr": vault_addr, "vault_token": SecretStr(VAULT_TOKEN)}
    )


@pytest.fixture
def vault_store(vault_settings: Settings) -> VaultSecretStore:
    return VaultSecretStore(vault_settings)


@pytest.fixture
def bao(vault_addr: str) -> hvac.Client:
    return hvac.Client(url=vault_addr, token=VAULT_TOKEN)


def vault_path(tenant: uuid.UUID, provider: Provider) -> str:
    return f"tenants/{tenant}/{provider.value}"


def read_vault(bao: hvac.Client, path: str, version: int | None = None) -> dict[str, Any]:
    response = bao.secrets.kv.v2.read_secret_version(
        path=path, version=version, mount_point="secret", raise_on_deleted_version=True
    )
    data: dict[str, Any] = response["data"]["data"]
    return data


async def credential_row(owner_pool: asyncpg.Pool, tenant: uuid.UUID, provider: Provider) -> Any:
    async with owner_pool.acquire() as conn:
        return await conn.fetchrow(
            "SELECT backend, ciphertext, version FROM credentials "
            "WHERE tenant_id = $1 AND provider = $2",
            tenant,
            provider.value,
        )


async def test_vault_holds_the_secret_and_the_row_only_its_metadata(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, vault_store: VaultSecretStore, bao: Any
) -> None:
    tenant = await new_tenant(owner_pool)
    secret = {"api_key": canary(), "organization": "org-vault"}

    await put(app_pool, vault_store, tenant, Provider.openai, secret)

    assert read_vault(bao, vault_path(tenant, Provider.openai)) == secret
    row = await credential_row(owner_pool, tenant, Provider.openai)
    assert row["backend"] == "vault" and row["ciphertext"] is None and row["version"] == 1
    assert await read(app_pool, vault_store, tenant, Provider.openai) == secret


async def test_a_second_write_is_a_new_vault_version_and_old_versions_stay(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, vault_store: VaultSecretStore, bao: Any
) -> None:
    tenant = await new_tenant(owner_pool)
    first, second = {"api_key": canary()}, {"api_key": canary()}
    path = vault_path(tenant, Provider.anthropic)

    await put(app_pool, vault_store, tenant, Provider.anthropic, first)
    await put(app_pool, vault_store, tenant, Provider.anthropic, second)

    assert (await credential_row(owner_pool, tenant, Provider.anthropic))["version"] == 2
    assert read_vault(bao, path, 1) == first
    assert read_vault(bao, path, 2) == second
    metadata = bao.secrets.kv.v2.read_secret_metadata(path=path, mount_point="secret")
    assert int(metadata["data"]["current_version"]) == 2
    assert await read(app_pool, vault_store, tenant, Provider.anthropic) == second


async def test_a_version_written_outside_opshub_is_superseded_by_the_next_save(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, vault_store: VaultSecretStore, bao: Any
) -> None:
    """opshub's writers are serialised by the row lock, so it can't tell an operator's write from
    a save that rolled back: the next save through the API wins, and Vault keeps both versions."""
    tenant = await new_tenant(owner_pool)
    mine, theirs, late = {"api_key": canary()}, {"api_key": canary()}, {"api_key": canary()}
    path = vault_path(tenant, Provider.openai)
    await put(app_pool, vault_store, tenant, Provider.openai, mine)
    bao.secrets.kv.v2.create_or_update_secret(path=path, secret=theirs, mount_point="secret")

    await put(app_pool, vault_store, tenant, Provider.openai, late)

    assert read_vault(bao, path) == late
    assert (await credential_row(owner_pool, tenant, Provider.openai))["version"] == 3
    assert await read(app_pool, vault_store, tenant, Provider.openai) == late


class RequestFailed(Exception):
    """Whatever made a request fail after its secret was written (it rolls the row back)."""


async def test_a_save_rolled_back_after_writing_to_vault_does_not_block_the_next(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, vault_store: VaultSecretStore, bao: Any
) -> None:
    tenant = await new_tenant(owner_pool)
    first, failed, retry = {"api_key": canary()}, {"api_key": canary()}, {"api_key": canary()}
    await put(app_pool, vault_store, tenant, Provider.openai, first)
    with pytest.raises(RequestFailed):
        async with tenant_transaction(app_pool, tenant) as conn:
            await credentials_service.put_credential(
                conn,
                store=vault_store,
                tenant_id=tenant,
                provider=Provider.openai,
                secret=failed,
                label=None,
            )
            raise RequestFailed

    # Nobody else wrote: the version Vault is ahead by is this hub's own, from the failed save.
    await put(app_pool, vault_store, tenant, Provider.openai, retry)

    assert await read(app_pool, vault_store, tenant, Provider.openai) == retry
    assert read_vault(bao, vault_path(tenant, Provider.openai)) == retry


async def test_deleting_destroys_every_vault_version(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, vault_store: VaultSecretStore, bao: Any
) -> None:
    tenant = await new_tenant(owner_pool)
    path = vault_path(tenant, Provider.saleor)
    for _ in range(2):
        secret = {"url": "https://shop.example.com/graphql/", "token": canary()}
        await put(app_pool, vault_store, tenant, Provider.saleor, secret)

    await delete(app_pool, vault_store, tenant, Provider.saleor)

    for version in (None, 1, 2):
        with pytest.raises(InvalidPath):
            read_vault(bao, path, version)
    with pytest.raises(InvalidPath):
        bao.secrets.kv.v2.read_secret_metadata(path=path, mount_point="secret")
    assert await credential_row(owner_pool, tenant, Provider.saleor) is None
    assert await read(app_pool, vault_store, tenant, Provider.saleor) is None


async def test_vault_down_is_a_store_error_that_names_no_secret(
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    vault_settings: Settings,
    vault_store: VaultSecretStore,
) -> None:
    down = VaultSecretStore(
        vault_settings.model_copy(update={"vault_addr": f"http://127.0.0.1:{closed_port()}"})
    )
    tenant = await new_tenant(owner_pool)
    secret = {"api_key": canary()}

    with pytest.raises(CredentialStoreError) as on_write:
        await put(app_pool, down, tenant, Provider.openai, secret)
    assert await credential_row(owner_pool, tenant, Provider.openai) is None

    await put(app_pool, vault_store, tenant, Provider.openai, secret)
    with pytest.raises(CredentialStoreError) as on_read:
        await read(app_pool, down, tenant, Provider.openai)

    for raised in (on_write, on_read):
        message = str(raised.value)
        assert "Vault" in message
        assert secret["api_key"] not in message and VAULT_TOKEN not in message


async def test_a_secret_stored_in_one_backend_is_not_read_as_another(
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    vault_store: VaultSecretStore,
    store: DatabaseSecretStore,
) -> None:
    tenant = await new_tenant(owner_pool)
    await put(app_pool, vault_store, tenant, Provider.openai, {"api_key": canary()})
    with pytest.raises(CredentialStoreError, match="store it again"):
        await read(app_pool, store, tenant, Provider.openai)


# --- the resolver ----------------------------------------------------------------------------

PLATFORM_KEY = "sk-platform-" + uuid.uuid4().hex


def resolver_settings(settings: Settings, **overrides: Any) -> Settings:
    return settings.model_copy(
        update={
            "platform_openai_api_key": SecretStr(PLATFORM_KEY),
            "credential_cache_seconds": 30.0,
            **overrides,
        }
    )


async def test_the_tenants_own_key_wins_over_the_platforms(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, settings: Settings, store: Any
) -> None:
    tenant = await new_tenant(owner_pool, plan="pro")
    secret = {"api_key": canary()}
    await put(app_pool, store, tenant, Provider.openai, secret)
    resolver = CredentialResolver(pool=app_pool, store=store, settings=resolver_settings(settings))

    resolved = await resolver.resolve(tenant_id=tenant, provider=Provider.openai)

    assert resolved.source is Source.byok and resolved.secret == secret
    assert resolved.provider is Provider.openai
    for shown in (repr(resolved), str(resolved)):
        assert secret["api_key"] not in shown
        assert resolved.fingerprint in shown


async def test_platform_keys_only_for_the_plans_that_include_them(
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    owner_engine: AsyncEngine,
    settings: Settings,
    store: Any,
) -> None:
    tenant = await new_tenant(owner_pool)
    resolver = CredentialResolver(pool=app_pool, store=store, settings=resolver_settings(settings))

    with pytest.raises(CredentialMissingError) as standard:
        await resolver.resolve(tenant_id=tenant, provider=Provider.openai)
    assert "PUT /v1/credentials/openai" in str(standard.value)
    assert "standard" in str(standard.value) and PLATFORM_KEY not in str(standard.value)

    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE tenants SET plan = 'pro' WHERE id = :id"), {"id": tenant})
    resolved = await resolver.resolve(tenant_id=tenant, provider=Provider.openai)
    assert resolved.source is Source.platform
    assert resolved.secret == {"api_key": PLATFORM_KEY}
    assert PLATFORM_KEY not in repr(resolved)
    # No platform Anthropic key is configured.
    with pytest.raises(CredentialMissingError, match="PUT /v1/credentials/anthropic"):
        await resolver.resolve(tenant_id=tenant, provider=Provider.anthropic)

    # The plans are a setting: here, only "standard" gets platform keys.
    other = CredentialResolver(
        pool=app_pool,
        store=store,
        settings=resolver_settings(settings, platform_key_plans=["standard"]),
    )
    with pytest.raises(CredentialMissingError):
        await other.resolve(tenant_id=tenant, provider=Provider.openai)
    standard_tenant = await new_tenant(owner_pool)
    assert (await other.resolve(tenant_id=standard_tenant, provider=Provider.openai)).source == (
        Source.platform
    )


async def test_a_missing_key_names_the_endpoint_that_stores_one(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, settings: Settings, store: Any
) -> None:
    tenant = await new_tenant(owner_pool, plan="enterprise")
    resolver = CredentialResolver(pool=app_pool, store=store, settings=settings)

    for provider in (Provider.openai, Provider.google_ads, Provider.saleor):
        with pytest.raises(CredentialMissingError) as raised:
            await resolver.resolve(tenant_id=tenant, provider=provider)
        assert f"PUT /v1/credentials/{provider.value}" in str(raised.value)


async def test_resolutions_are_cached_until_changed(
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    owner_engine: AsyncEngine,
    settings: Settings,
    store: Any,
) -> None:
    tenant = await new_tenant(owner_pool)
    secret = {"api_key": canary()}
    await put(app_pool, store, tenant, Provider.anthropic, secret)
    resolver = CredentialResolver(pool=app_pool, store=store, settings=resolver_settings(settings))
    first = await resolver.resolve(tenant_id=tenant, provider=Provider.anthropic)

    # Gone from the database behind the resolver's back: the cached resolution still answers.
    async with owner_engine.begin() as conn:
        await conn.execute(text("DELETE FROM credentials WHERE tenant_id = :t"), {"t": tenant})
    again = await resolver.resolve(tenant_id=tenant, provider=Provider.anthropic)
    assert again.secret == secret and again.source is Source.byok

    await resolver.changed(tenant_id=tenant, provider=Provider.anthropic)
    with pytest.raises(CredentialMissingError):
        await resolver.resolve(tenant_id=tenant, provider=Provider.anthropic)
    assert first.secret == secret


async def test_without_a_cache_every_resolution_reads_the_database(
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    owner_engine: AsyncEngine,
    settings: Settings,
    store: Any,
) -> None:
    tenant = await new_tenant(owner_pool)
    await put(app_pool, store, tenant, Provider.openai, {"api_key": canary()})
    resolver = CredentialResolver(
        pool=app_pool,
        store=store,
        settings=resolver_settings(settings, credential_cache_seconds=0),
    )
    assert (await resolver.resolve(tenant_id=tenant, provider=Provider.openai)).source == "byok"

    async with owner_engine.begin() as conn:
        await conn.execute(text("DELETE FROM credentials WHERE tenant_id = :t"), {"t": tenant})

    with pytest.raises(CredentialMissingError):
        await resolver.resolve(tenant_id=tenant, provider=Provider.openai)


async def subscribers(redis: Redis) -> int:
    [(_, count)] = await redis.pubsub_numsub(INVALIDATION_CHANNEL)
    return int(count)


async def subscribed(redis: Redis, at_least: int) -> bool:
    return await subscribers(redis) >= at_least


async def eventually(condition: Callable[[], Awaitable[bool]], seconds: float = 2.0) -> bool:
    """Poll ``condition`` every 20 ms until it holds or ``seconds`` have passed."""
    deadline = time.monotonic() + seconds
    while True:
        if await condition():
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)


async def test_a_change_in_one_process_reaches_the_others_through_redis(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, settings: Settings, store: Any
) -> None:
    tenant = await new_tenant(owner_pool)
    old, new = {"api_key": canary()}, {"api_key": canary()}
    await put(app_pool, store, tenant, Provider.openai, old)
    cached = resolver_settings(settings)
    redis_1, redis_2 = Redis.from_url(REDIS_URL), Redis.from_url(REDIS_URL)
    process_1 = CredentialResolver(pool=app_pool, store=store, settings=cached, redis=redis_1)
    process_2 = CredentialResolver(pool=app_pool, store=store, settings=cached, redis=redis_2)
    try:
        before = await subscribers(redis_1)
        process_1.start()
        process_2.start()
        assert await eventually(lambda: subscribed(redis_1, before + 2)), "no subscription"

        for process in (process_1, process_2):
            assert (await process.resolve(tenant_id=tenant, provider=Provider.openai)).secret == old
        await put(app_pool, store, tenant, Provider.openai, new)
        # Not told yet: process 2 keeps answering from its cache.
        assert (await process_2.resolve(tenant_id=tenant, provider=Provider.openai)).secret == old

        await process_1.changed(tenant_id=tenant, provider=Provider.openai)

        assert (await process_1.resolve(tenant_id=tenant, provider=Provider.openai)).secret == new

        async def process_2_has_the_new_key() -> bool:
            resolved = await process_2.resolve(tenant_id=tenant, provider=Provider.openai)
            return resolved.secret == new

        assert await eventually(process_2_has_the_new_key), "process 2 still has the old key"
    finally:
        await process_1.stop()
        await process_2.stop()
        await redis_1.aclose()
        await redis_2.aclose()


# --- the health sweep ------------------------------------------------------------------------


class CountingProvider:
    """GET /v1/models answering the status set per key, counting requests in flight."""

    def __init__(self, delay: float) -> None:
        self.status_for: dict[str, int] = {}
        self.keys_seen: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                key = self.headers.get("x-api-key") or self.headers.get(
                    "Authorization", ""
                ).removeprefix("Bearer ")
                with fake._lock:
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                    fake.keys_seen.append(key)
                    status = fake.status_for.get(key, 200) if self.path == "/v1/models" else 404
                time.sleep(delay)
                # Counted out before answering: the client can't start another request sooner.
                with fake._lock:
                    fake.in_flight -= 1
                body = b'{"object": "list", "data": []}'
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client went away (a sweep that stopped): nothing to answer

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def provider() -> Iterator[CountingProvider]:
    server = CountingProvider(delay=0.03)
    yield server
    server.stop()


def sweep_settings(settings: Settings, provider: CountingProvider) -> Settings:
    return settings.model_copy(
        update={"openai_base_url": f"{provider.base}/v1", "anthropic_base_url": provider.base}
    )


async def statuses(pool: asyncpg.Pool) -> dict[tuple[uuid.UUID, str], tuple[str, Any]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT tenant_id, provider, status, checked_at FROM credentials")
    return {(r["tenant_id"], r["provider"]): (r["status"], r["checked_at"]) for r in rows}


async def test_the_sweep_checks_every_credential_a_few_at_a_time(
    isolated: Isolated,
    store: DatabaseSecretStore,
    settings: Settings,
    provider: CountingProvider,
) -> None:
    answers = [200, 401, 429, 500]
    expected_status = {200: "healthy", 401: "invalid", 429: "rate_limited", 500: "unreachable"}
    keys: dict[tuple[uuid.UUID, str], str] = {}
    for i in range(30):
        tenant = await new_tenant(isolated.owner_pool)
        which = Provider.openai if i % 2 else Provider.anthropic
        key = f"sk-sweep-{i:02d}-{uuid.uuid4().hex}"
        provider.status_for[key] = answers[i % 4]
        keys[(tenant, which.value)] = key
        await put(isolated.app_pool, store, tenant, which, {"api_key": key})
    changes: list[tuple[uuid.UUID, Provider, Health, Health]] = []

    async def on_change(tenant: uuid.UUID, which: Provider, old: Health, new: Health) -> None:
        changes.append((tenant, which, old, new))

    counts = await health.sweep(
        isolated.app_pool,
        isolated.owner_pool,
        store=store,
        settings=sweep_settings(settings, provider),
        concurrency=5,
        on_change=on_change,
    )

    assert sorted(provider.keys_seen) == sorted(keys.values())
    assert 2 <= provider.max_in_flight <= 5, provider.max_in_flight
    want = {
        (tenant, which): expected_status[provider.status_for[key]]
        for (tenant, which), key in keys.items()
    }
    recorded = await statuses(isolated.owner_pool)
    assert {k: status for k, (status, _) in recorded.items()} == want
    assert all(checked_at is not None for _, checked_at in recorded.values())
    assert counts[Health.healthy] == 8 and counts[Health.invalid] == 8
    assert counts[Health.rate_limited] == 7 and counts[Health.unreachable] == 7
    # Every credential went from unchecked to its first status: one call each.
    assert sorted((t, p.value, o.value, n.value) for t, p, o, n in changes) == sorted(
        (t, p, "unchecked", s) for (t, p), s in want.items()
    )

    # Again, with three keys answering differently now: only those three are news.
    changed = list(keys.items())[:3]
    for _, key in changed:
        provider.status_for[key] = 401 if provider.status_for[key] != 401 else 200
    changes.clear()
    provider.max_in_flight = 0
    await health.sweep(
        isolated.app_pool,
        isolated.owner_pool,
        store=store,
        settings=sweep_settings(settings, provider),
        concurrency=5,
        on_change=on_change,
    )
    assert provider.max_in_flight <= 5
    assert sorted((t, p.value, o.value, n.value) for t, p, o, n in changes) == sorted(
        (t, p, want[(t, p)], expected_status[provider.status_for[key]]) for (t, p), key in changed
    )


async def test_one_unreadable_credential_does_not_stop_the_sweep(
    isolated: Isolated,
    store: DatabaseSecretStore,
    settings: Settings,
    provider: CountingProvider,
) -> None:
    tenants = [await new_tenant(isolated.owner_pool) for _ in range(4)]
    for tenant in tenants:
        await put(isolated.app_pool, store, tenant, Provider.openai, {"api_key": canary()})
    # One row no longer decrypts (say, restored from another installation's backup).
    async with isolated.owner_pool.acquire() as conn:
        await conn.execute(
            "UPDATE credentials SET ciphertext = $2 WHERE tenant_id = $1",
            tenants[0],
            secrets.token_bytes(64),
        )

    try:
        await health.sweep(
            isolated.app_pool,
            isolated.owner_pool,
            store=store,
            settings=sweep_settings(settings, provider),
            concurrency=5,
        )
    except CredentialStoreError as exc:
        await asyncio.sleep(0.2)  # let the checks it left running finish before teardown
        pytest.fail(f"the sweep stopped at one unreadable credential: {exc!r}")

    recorded = await statuses(isolated.owner_pool)
    assert all(recorded[(t, "openai")][0] == "healthy" for t in tenants[1:])
