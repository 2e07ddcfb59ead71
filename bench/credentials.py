"""Credential resolution (warm and cold) and the health sweep, each beside its baseline.

- warm: `CredentialResolver.resolve` from its cache, beside a bare dict lookup of the same key;
- cold: resolve with caching off, from Vault (a real OpenBao dev server) and from the
  encrypted rows, beside a raw hvac read of the same secret (Vault's own floor);
- sweep: health checks of 1,000 tenants' keys against the fake model server answering in
  100 ms, at concurrency 20, beside the floor of 1,000 x 100 ms / 20.

    .venv/bin/python bench/credentials.py

Results go to bench/results/credentials.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.llm import FakeLLMServer
from tests.fakes.server import start_openbao

from opshub.config import Settings
from opshub.credentials import service as credentials_service
from opshub.credentials.envelope import MasterKeyring
from opshub.credentials.health import sweep
from opshub.credentials.models import Health, Provider
from opshub.credentials.resolver import CredentialResolver
from opshub.credentials.store import DatabaseSecretStore, SecretStore, VaultSecretStore
from opshub.db.engine import create_pool, resolve_database_urls, tenant_transaction
from opshub.db.migrate import migrate

HERE = Path(__file__).parent
WORK = HERE / ".work" / "credentials"
RESULTS = HERE / "results" / "credentials.json"
TENANTS, VAULT_TENANTS, WARM_CALLS, COLD_CALLS = 1_000, 100, 20_000, 1_000
SWEEP_LATENCY, SWEEP_CONCURRENCY = 0.1, 20
VAULT_TOKEN = "bench-root"  # noqa: S105 - a throw-away dev server's token


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)
    return {
        "p50_ms": round(statistics.median(ordered) / 1e6, 4),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] / 1e6, 4),
    }


async def timed(calls: list[Any]) -> list[int]:
    samples = []
    for call in calls:
        start = time.perf_counter_ns()
        await call()
        samples.append(time.perf_counter_ns() - start)
    return samples


async def seed_tenants(owner_pool: Any, count: int) -> list[uuid.UUID]:
    async with owner_pool.acquire() as conn:
        existing = await conn.fetch("SELECT id FROM tenants ORDER BY created_at LIMIT $1", count)
        missing = count - len(existing)
        created = (
            await conn.fetch(
                "INSERT INTO tenants (name, plan) SELECT 'bench-' || g, 'standard'"
                " FROM generate_series(1, $1) g RETURNING id",
                missing,
            )
            if missing > 0
            else []
        )
    return [row["id"] for row in [*existing, *created]]


async def store_keys(app_pool: Any, store: SecretStore, tenants: list[uuid.UUID]) -> None:
    for tenant_id in tenants:
        async with tenant_transaction(app_pool, tenant_id) as conn:
            await credentials_service.put_credential(
                conn,
                store=store,
                tenant_id=tenant_id,
                provider=Provider.openai,
                secret={"api_key": f"sk-bench-{tenant_id.hex}"},
                label=None,
            )


async def main() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=WORK, credential_cache_seconds=3600)
    urls = resolve_database_urls(settings)
    await migrate(urls)
    app_pool = await create_pool(urls.app, size=SWEEP_CONCURRENCY + 5)
    owner_pool = await create_pool(urls.owner, size=2)
    tenants = await seed_tenants(owner_pool, TENANTS)
    db_store = DatabaseSecretStore(MasterKeyring.load(env_keys=None, path=WORK / "master_keys"))
    await store_keys(app_pool, db_store, tenants)
    report: dict[str, Any] = {}

    warm = CredentialResolver(pool=app_pool, store=db_store, settings=settings)
    picks = [random.choice(tenants) for _ in range(WARM_CALLS)]
    for tenant_id in tenants:
        await warm.resolve(tenant_id=tenant_id, provider=Provider.openai)
    plain = {(t, Provider.openai): t for t in tenants}

    async def dict_lookup(key: tuple[uuid.UUID, Provider]) -> None:
        plain.get(key)

    report["warm"] = {
        "resolver": percentiles(
            await timed(
                [lambda t=t: warm.resolve(tenant_id=t, provider=Provider.openai) for t in picks]
            )
        ),
        "baseline_dict_lookup": percentiles(
            await timed([lambda t=t: dict_lookup((t, Provider.openai)) for t in picks])
        ),
    }

    cold_settings = settings.model_copy(update={"credential_cache_seconds": 0})
    cold_db = CredentialResolver(pool=app_pool, store=db_store, settings=cold_settings)
    cold_picks = [random.choice(tenants) for _ in range(COLD_CALLS)]
    report["cold_database"] = percentiles(
        await timed(
            [lambda t=t: cold_db.resolve(tenant_id=t, provider=Provider.openai) for t in cold_picks]
        )
    )

    bao, addr = start_openbao(VAULT_TOKEN)
    try:
        vault_settings = cold_settings.model_copy(
            update={"vault_addr": addr, "vault_token": SecretStr(VAULT_TOKEN)}
        )
        vault_store = VaultSecretStore(vault_settings)
        vault_tenants = tenants[:VAULT_TENANTS]
        async with owner_pool.acquire() as conn:
            await conn.execute("DELETE FROM credentials WHERE tenant_id = ANY($1)", vault_tenants)
        await store_keys(app_pool, vault_store, vault_tenants)
        cold_vault = CredentialResolver(pool=app_pool, store=vault_store, settings=vault_settings)
        vault_picks = [random.choice(vault_tenants) for _ in range(COLD_CALLS)]
        kv = vault_store._client.secrets.kv.v2

        async def raw_read(tenant_id: uuid.UUID) -> None:
            await asyncio.to_thread(
                kv.read_secret_version,
                path=vault_store.path(tenant_id, "openai"),
                mount_point="secret",
                raise_on_deleted_version=True,
            )

        report["cold_vault"] = {
            "resolver": percentiles(
                await timed(
                    [
                        lambda t=t: cold_vault.resolve(tenant_id=t, provider=Provider.openai)
                        for t in vault_picks
                    ]
                )
            ),
            "baseline_raw_hvac_read": percentiles(
                await timed([lambda t=t: raw_read(t) for t in vault_picks])
            ),
        }
        async with owner_pool.acquire() as conn:
            await conn.execute("DELETE FROM credentials WHERE tenant_id = ANY($1)", vault_tenants)
        await store_keys(app_pool, db_store, vault_tenants)
    finally:
        bao.terminate()
        bao.wait(timeout=10)

    with FakeLLMServer(default_latency=SWEEP_LATENCY) as fake:
        sweep_settings = settings.model_copy(update={"openai_base_url": f"{fake.base_url}/v1"})
        start = time.perf_counter()
        counts = await sweep(
            app_pool,
            owner_pool,
            store=db_store,
            settings=sweep_settings,
            concurrency=SWEEP_CONCURRENCY,
        )
        elapsed = time.perf_counter() - start
        report["sweep"] = {
            "keys": TENANTS,
            "concurrency": SWEEP_CONCURRENCY,
            "provider_latency_s": SWEEP_LATENCY,
            "seconds": round(elapsed, 2),
            "floor_seconds": TENANTS * SWEEP_LATENCY / SWEEP_CONCURRENCY,
            "max_in_flight": fake.max_in_flight,
            "healthy": counts[Health.healthy],
        }

    await app_pool.close()
    await owner_pool.close()
    report = {
        "benchmark": "credentials",
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        **report,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
