"""POST /v1/memories/import: many memories at once, all or none, with or without their vectors.

What a caller sees: imported memories are found by meaning (by the vector they brought, when they
brought one); an import repeated inserts nothing; one bad row refuses the whole import; only
admins import; another tenant sees none of it.
"""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient

from opshub.config import get_settings
from opshub.memory.embedders import LocalEmbedder
from tests.api.test_memory_api import assert_error, key_with_role, listing
from tests.conftest import TenantHandle


async def import_(
    client: AsyncClient, headers: dict[str, str], memories: list[dict[str, Any]]
) -> Any:
    return await client.post("/v1/memories/import", json={"memories": memories}, headers=headers)


async def test_imported_memories_are_found_by_meaning_and_a_repeat_inserts_nothing(
    client: AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    refunds = "Refund policy: returns are accepted within 30 days"
    [vector] = await LocalEmbedder(cache_dir=get_settings().model_cache_dir).embed([refunds])
    memories = [
        {"content": "Customers ask for tents in early spring", "scope": "crew:ecommerce"},
        {"content": "Customers may send goods back for a month", "kind": "preference"},
        # Brought the vector of other words: stored as given, not embedded again.
        {"content": "Item 4471 in the catalogue", "embedding": vector, "importance": 0.9},
    ]
    response = await import_(client, tenant_a.headers, memories)
    assert response.status_code == 200, response.text
    assert response.json() == {"received": 3, "inserted": 3, "skipped": 0}

    found = await listing(client, tenant_a.headers, query=refunds, limit=2)
    assert [m["content"] for m in found] == [
        "Item 4471 in the catalogue",
        "Customers may send goods back for a month",
    ]
    assert found[0]["importance"] == 0.9
    [tents] = await listing(
        client, tenant_a.headers, query="camping shelters", scope="crew:ecommerce"
    )
    assert tents["content"] == "Customers ask for tents in early spring"

    again = await import_(client, tenant_a.headers, [*memories, memories[0]])
    assert again.json() == {"received": 4, "inserted": 0, "skipped": 4}
    assert len(await listing(client, tenant_a.headers, limit=100)) == 3
    assert await listing(client, tenant_b.headers, limit=100) == []


BAD_ROWS = [
    pytest.param({"content": "x", "embedding": [0.1, 0.2, 0.3]}, "invalid_request", id="3-dims"),
    pytest.param({"content": "x", "scope": "planet:mars"}, "invalid_scope", id="bad-scope"),
    pytest.param({"content": "   "}, "invalid_request", id="blank"),
    pytest.param({"content": "x", "subject": "s"}, "invalid_request", id="unknown-field"),
]


@pytest.mark.parametrize(("row", "code"), BAD_ROWS)
async def test_one_bad_row_refuses_the_whole_import(
    client: AsyncClient, tenant_a: TenantHandle, row: dict[str, Any], code: str
) -> None:
    good = {"content": "Returns are accepted for 30 days"}
    response = await import_(client, tenant_a.headers, [good, row])
    error = assert_error(response, 422, code)
    if code == "invalid_request":  # the field's place names the row
        assert all(f["loc"].startswith("body.memories.1") for f in error["details"]["fields"])
    assert await listing(client, tenant_a.headers, limit=100) == []


async def test_an_empty_or_oversized_import_is_refused(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    assert_error(await import_(client, tenant_a.headers, []), 422, "invalid_request")
    rows = [{"content": f"note {n}", "embedding": [0.0] * 384} for n in range(5_001)]
    assert_error(await import_(client, tenant_a.headers, rows), 422, "invalid_request")


@pytest.mark.parametrize("role", ["viewer", "member"])
async def test_only_admins_import(client: AsyncClient, tenant_a: TenantHandle, role: str) -> None:
    headers = await key_with_role(client, tenant_a, role)
    response = await import_(client, headers, [{"content": "a fact"}])
    assert_error(response, 403, "forbidden")
    assert await listing(client, tenant_a.headers) == []
