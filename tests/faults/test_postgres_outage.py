"""PostgreSQL killed and started again under a running hub: the API answers 503 with Retry-After
meanwhile (keeping its clients' connections), and every loop of ``opshub serve`` and of a separate
``opshub worker`` resumes by itself: tasks accepted afterwards run, on both."""

from __future__ import annotations

import asyncio
import http.client
import json
import uuid
from typing import Any

import httpx

from tests.conftest import TenantHandle
from tests.faults.conftest import STARTUP, TERMINAL, Cluster, OpshubProcess, until


async def store_openai_key(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    response = await client.put(
        "/v1/credentials/openai",
        json={"secret": {"api_key": f"sk-{uuid.uuid4().hex}"}},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text


async def submit(client: httpx.AsyncClient, tenant: TenantHandle, text: str) -> str:
    response = await client.post(
        "/v1/tasks", json={"crew": "assistant", "input": text}, headers=tenant.headers
    )
    assert response.status_code == 202, response.text
    task_id: str = response.json()["id"]
    return task_id


async def finished(
    client: httpx.AsyncClient, tenant: TenantHandle, task_id: str, within: float
) -> dict[str, Any]:
    async def status() -> dict[str, Any] | None:
        response = await client.get(f"/v1/tasks/{task_id}", headers=tenant.headers)
        task: dict[str, Any] = response.json()
        return task if response.status_code == 200 and task["status"] in TERMINAL else None

    return await until(status, within, f"task {task_id} to finish")


def two_requests_on_one_connection(
    api: OpshubProcess, tenant: TenantHandle, task_id: str
) -> tuple[http.client.HTTPResponse, bytes, int]:
    """A task read while the database is down, then /healthz on the same kept-alive socket:
    (the first response, its body, the second's status)."""
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=30)
    try:
        conn.request("GET", f"/v1/tasks/{task_id}", headers=tenant.headers)
        first = conn.getresponse()
        body = first.read()
        socket_used = conn.sock
        conn.request("GET", "/healthz")
        second = conn.getresponse()
        second.read()
        assert conn.sock is socket_used, "the server closed the kept-alive connection"
        return first, body, second.status
    finally:
        conn.close()


async def test_the_hub_answers_503_while_postgres_is_down_and_resumes_by_itself(
    cluster: Cluster,
) -> None:
    serve = cluster.spawn("serve", http=True, OPSHUB_WORKER_CONCURRENCY="2")
    worker = cluster.spawn("worker", "--concurrency", "4")
    await cluster.serving(serve)
    tenant = await cluster.tenant("Acme Outdoor")
    async with httpx.AsyncClient(base_url=serve.base_url, timeout=30) as client:
        await store_openai_key(client, tenant)
        first = await submit(client, tenant, "Summarise last week")
        assert (await finished(client, tenant, first, STARTUP))["status"] == "succeeded"

        async def worker_started() -> bool:
            return "worker started" in worker.output()

        await until(worker_started, STARTUP, "the separate worker")

        cluster.postgres.kill()
        response, body, next_status = await asyncio.to_thread(
            two_requests_on_one_connection, serve, tenant, first
        )
        assert response.status == 503, body
        assert response.getheader("Retry-After") == "5"
        assert json.loads(body)["error"]["code"] == "database_unavailable"
        assert next_status == 200
        readiness = await client.get("/readyz")
        assert readiness.status_code == 503
        assert readiness.json()["checks"]["database"].startswith("unavailable")

        # Long enough for every loop to have failed against the dead server at least once.
        await asyncio.sleep(3)
        cluster.postgres.start()

        async def ready() -> dict[str, Any] | None:
            response = await client.get("/readyz")
            checks: dict[str, Any] = response.json()["checks"]
            return checks if response.status_code == 200 else None

        checks = await until(ready, 60, "the hub to be ready again")
        assert checks["loops"] == "ok"

        # Both workers claim again. Alone, serve's two slots would need 18 s for these runs: more
        # than the longest a loop waits before it retries (15 s), so the separate worker, whatever
        # its backoff when the database came back, is claiming before they are all done.
        cluster.fake_llm.script_openai("Done after the outage.", latency=3.0, times=12)
        task_ids = [await submit(client, tenant, f"Report {n}") for n in range(12)]
        lessees: set[str] = set()

        async def all_finished() -> bool:
            rows = await cluster.owner.fetch(
                "SELECT status, lease_owner FROM tasks WHERE id = ANY($1::uuid[])",
                [uuid.UUID(t) for t in task_ids],
            )
            lessees.update(row["lease_owner"] for row in rows if row["lease_owner"])
            return all(row["status"] in TERMINAL for row in rows)

        await until(all_finished, 60, "the tasks accepted after the outage")
        for task_id in task_ids:
            task = (await client.get(f"/v1/tasks/{task_id}", headers=tenant.headers)).json()
            assert (task["status"], task["result"]) == ("succeeded", "Done after the outage.")
        assert any(owner.startswith(worker.lease_prefix) for owner in lessees), worker.output()
        assert any(owner.startswith(serve.lease_prefix) for owner in lessees), serve.output()
        assert serve.alive() and worker.alive()
