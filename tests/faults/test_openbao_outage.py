"""OpenBao sealed, then down, under ``opshub serve`` keeping tenants' keys in it: the API says
``credential_store_unavailable`` (503), a run says the same while it waits with backoff, and once
OpenBao is unsealed the waiting run and everything after it go on by themselves."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.server import OpenBaoProcess
from tests.faults.conftest import STARTUP, Cluster, until
from tests.faults.test_postgres_outage import finished, store_openai_key, submit

STORE_DOWN = "credential_store_unavailable"


@pytest.fixture
def openbao(tmp_path: Path) -> Iterator[OpenBaoProcess]:
    server = OpenBaoProcess(f"root-{uuid.uuid4().hex}", tmp_path / "openbao.log")
    server.start()
    try:
        yield server
    finally:
        server.kill()


async def test_a_sealed_openbao_is_a_clear_503_and_runs_go_on_once_it_is_unsealed(
    cluster: Cluster, openbao: OpenBaoProcess
) -> None:
    serve = cluster.spawn(
        "serve",
        http=True,
        OPSHUB_VAULT_ADDR=openbao.addr,
        OPSHUB_VAULT_TOKEN=openbao.root_token,
        # Long enough to see the waiting run, short enough to see it recover.
        OPSHUB_TASK_RETRY_BACKOFF_SECONDS="4",
    )
    await cluster.serving(serve)
    tenant = await cluster.tenant("Acme Outdoor")
    async with httpx.AsyncClient(base_url=serve.base_url, timeout=30) as client:
        await store_openai_key(client, tenant)  # into OpenBao
        before = await submit(client, tenant, "Summarise last week")
        assert (await finished(client, tenant, before, STARTUP))["status"] == "succeeded"

        openbao.seal()
        check = await client.post("/v1/credentials/openai/check", headers=tenant.headers)
        assert check.status_code == 503, check.text
        assert check.json()["error"]["code"] == STORE_DOWN
        assert (await client.get("/readyz")).json()["checks"]["vault"].startswith("unavailable")

        during = await submit(client, tenant, "Summarise this week")

        async def waiting() -> dict[str, Any] | None:
            task: dict[str, Any] = (
                await client.get(f"/v1/tasks/{during}", headers=tenant.headers)
            ).json()
            return task if task["status"] == "queued" and task["error"] else None

        task = await until(waiting, 60, "the run to meet the sealed store and wait")
        assert task["error"]["code"] == STORE_DOWN
        assert task["attempt"] == 1

        openbao.unseal()
        task = await finished(client, tenant, during, 60)
        assert (task["status"], task["attempt"]) == ("succeeded", 2)
        assert task["result"] == "Final answer from the fake model."
        assert (await client.post("/v1/credentials/openai/check", headers=tenant.headers)).json()[
            "status"
        ] == "healthy"
        assert (await client.get("/readyz")).status_code == 200

        openbao.kill()  # down, not sealed: the same clear answer
        check = await client.post("/v1/credentials/openai/check", headers=tenant.headers)
        assert check.status_code == 503 and check.json()["error"]["code"] == STORE_DOWN
        assert serve.alive()
