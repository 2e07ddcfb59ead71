"""``opshub memory search|forget|reembed`` as processes, on the hub's database."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from httpx import AsyncClient

from opshub.config import Settings
from opshub.db.engine import DatabaseUrls, dsn
from tests.conftest import TenantHandle
from tests.fakes.llm import FakeLLMServer
from tests.integration.runtime.conftest import store_openai_key

EMAIL = "Acme wants every proposal sent by email, never by post."
BAKERY = "Blue Bakery closes on Mondays."
HIKERS = "Acme's spring campaign targets hikers."


@pytest.fixture
def memory_cli(runtime_settings: Settings, urls: DatabaseUrls):  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSHUB_")}
    env.update(
        OPSHUB_DATABASE_URL=dsn(urls.owner),
        OPSHUB_DATABASE_APP_URL=dsn(urls.app),
        OPSHUB_DATA_DIR=str(runtime_settings.data_dir),
        OPSHUB_OPENAI_BASE_URL=runtime_settings.openai_base_url,
        OPSHUB_CREDENTIAL_CACHE_SECONDS="0",
    )

    async def run(*args: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "opshub", "memory", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run


async def remember(client: AsyncClient, tenant: TenantHandle, content: str, scope: str) -> str:
    response = await client.post(
        "/v1/memories", json={"content": content, "scope": scope}, headers=tenant.headers
    )
    assert response.status_code == 201, response.text
    memory_id: str = response.json()["memory"]["id"]
    return memory_id


async def test_search_and_forget_reach_only_the_named_tenant(  # type: ignore[no-untyped-def]
    hub_client: AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle, memory_cli
) -> None:
    await remember(hub_client, tenant_a, EMAIL, "tenant")
    await remember(hub_client, tenant_a, HIKERS, "crew:marketing")
    await remember(hub_client, tenant_b, BAKERY, "tenant")

    found = await memory_cli(
        "search", "how should proposals reach Acme?", "--tenant", str(tenant_a.id)
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.splitlines()[0].endswith(EMAIL)
    assert BAKERY not in found.stdout

    forgot = await memory_cli("forget", "--tenant", str(tenant_a.id), "--scope", "crew:marketing")
    assert forgot.stdout.strip() == "1 memories deleted"
    erased = await memory_cli("forget", "--tenant", str(tenant_a.id), "--all")
    assert erased.stdout.strip() == "1 memories deleted"
    listing = await hub_client.get("/v1/memories", headers=tenant_b.headers)
    assert [item["content"] for item in listing.json()["items"]] == [BAKERY]


async def test_reembed_moves_a_tenant_to_openai_with_its_own_key(  # type: ignore[no-untyped-def]
    hub_client: AsyncClient, tenant_a: TenantHandle, fake_llm: FakeLLMServer, memory_cli
) -> None:
    key = await store_openai_key(hub_client, tenant_a)
    await remember(hub_client, tenant_a, EMAIL, "tenant")
    before = len(fake_llm.requests_for("/v1/embeddings"))

    moved = await memory_cli(
        "reembed", "--tenant", str(tenant_a.id), "--model", "openai/text-embedding-3-small"
    )

    assert moved.returncode == 0, moved.stderr
    assert "now recalls with openai/text-embedding-3-small (1 memories moved)" in moved.stdout
    calls = fake_llm.requests_for("/v1/embeddings")[before:]
    assert calls and all(call.api_key == key for call in calls)
    assert all(call.body["dimensions"] == 384 for call in calls)
    settings = await hub_client.get("/v1/memories/settings", headers=tenant_a.headers)
    assert settings.json()["embedding_model"] == "openai/text-embedding-3-small"
    hits = await hub_client.get("/v1/memories", params={"query": EMAIL}, headers=tenant_a.headers)
    [hit] = hits.json()["items"]
    assert hit["embedding_model"] == "openai/text-embedding-3-small"
    assert hit["similarity"] == pytest.approx(1.0, abs=1e-4)


async def test_import_stores_a_csv_whole_and_a_file_with_one_bad_row_not_at_all(  # type: ignore[no-untyped-def]
    hub_client: AsyncClient, tenant_a: TenantHandle, memory_cli, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps({"memories": [{"content": EMAIL}, {"content": "x", "scope": "planet:mars"}]})
    )
    refused = await memory_cli("import", str(bad), "--tenant", str(tenant_a.id))
    assert refused.returncode == 2
    assert "row 1: unknown scope 'planet:mars'" in refused.stderr
    assert "nothing was imported" in refused.stderr
    assert (await hub_client.get("/v1/memories", headers=tenant_a.headers)).json()["items"] == []

    good = tmp_path / "memories.csv"
    with good.open("w", newline="") as file:
        csv.writer(file).writerows(
            [
                ["content", "scope", "kind", "importance", "metadata"],
                [EMAIL, "tenant", "preference", "0.9", ""],
                [HIKERS, "crew:marketing", "fact", "", '{"source": "crm"}'],
            ]
        )
    imported = await memory_cli("import", str(good), "--tenant", str(tenant_a.id))
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "2 memories imported, 0 already there"
    again = await memory_cli("import", str(good), "--tenant", str(tenant_a.id))
    assert again.stdout.strip() == "0 memories imported, 2 already there"

    listing = await hub_client.get("/v1/memories", headers=tenant_a.headers)
    stored = {item["content"]: item for item in listing.json()["items"]}
    assert set(stored) == {EMAIL, HIKERS}
    assert stored[EMAIL]["kind"] == "preference" and stored[EMAIL]["importance"] == 0.9
    assert stored[HIKERS]["scope"] == "crew:marketing"
    assert stored[HIKERS]["metadata"] == {"source": "crm"}
    found = await memory_cli(
        "search", "how should proposals reach Acme?", "--tenant", str(tenant_a.id)
    )
    assert found.stdout.splitlines()[0].endswith(EMAIL)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("forget", "--tenant", "{tenant}"), "give either --scope or --all"),
        (("forget", "--tenant", "{tenant}", "--scope", "planet:mars"), "unknown scope"),
        (("reembed", "--tenant", "{tenant}", "--model", "word2vec"), "unknown embedding model"),
        (("search", "x", "--tenant", "00000000-0000-0000-0000-000000000000"), "no tenant"),
    ],
)
async def test_bad_input_is_one_line_and_exit_code_2(  # type: ignore[no-untyped-def]
    tenant_a: TenantHandle, memory_cli, args: tuple[str, ...], message: str
) -> None:
    result = await memory_cli(*(arg.format(tenant=tenant_a.id) for arg in args))
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
