"""A worker SIGKILLed mid-run: its tasks run again on another worker once the lease lapses, and
each completes exactly once (none lost, none finished twice, no call billed twice)."""

from __future__ import annotations

import json
import signal
import uuid

import httpx

from tests.faults.conftest import STARTUP, Cluster, until
from tests.faults.test_postgres_outage import finished, store_openai_key, submit


async def test_a_killed_workers_runs_complete_once_on_another_worker(cluster: Cluster) -> None:
    api = cluster.spawn("api", http=True)
    await cluster.serving(api)
    tenant = await cluster.tenant("Acme Outdoor")
    markers = [f"job-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    # The first worker's calls hang; whoever calls after them gets the default answer at once.
    cluster.fake_llm.script_openai("never delivered", latency=30.0, times=3)
    async with httpx.AsyncClient(base_url=api.base_url, timeout=30) as client:
        await store_openai_key(client, tenant)
        task_ids = [await submit(client, tenant, f"Summarise {marker}") for marker in markers]
        doomed = cluster.spawn("worker", "--concurrency", "4")

        def calls(marker: str) -> int:
            requests = cluster.fake_llm.requests_for("/v1/chat/completions")
            return sum(marker in json.dumps(request.body) for request in requests)

        async def all_in_flight() -> bool:
            return all(calls(marker) == 1 for marker in markers)

        await until(all_in_flight, STARTUP, "the first worker's model calls")
        rescuer = cluster.spawn("worker", "--concurrency", "4")
        doomed.process.send_signal(signal.SIGKILL)
        assert doomed.process.wait(timeout=10) == -signal.SIGKILL

        for task_id in task_ids:
            task = await finished(client, tenant, task_id, STARTUP)
            assert (task["status"], task["attempt"]) == ("succeeded", 2), rescuer.output()
            assert task["result"] == "Final answer from the fake model."
        for marker in markers:
            assert calls(marker) == 2  # one per attempt, none more
        ids = [uuid.UUID(task_id) for task_id in task_ids]
        assert await cluster.count(
            "SELECT count(*) FROM outbox WHERE event_type = 'task.succeeded' "
            "AND (data->>'task_id')::uuid = ANY($1::uuid[])",
            ids,
        ) == len(ids)
        # The dead worker's calls were never billed: one usage record per task.
        assert await cluster.count(
            "SELECT count(*) FROM usage_records WHERE task_id = ANY($1::uuid[])", ids
        ) == len(ids)
        assert rescuer.alive()
