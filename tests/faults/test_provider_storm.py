"""A model provider in a storm, from the fake on loopback, under ``opshub serve``: with 30 % of
answers a 429, a 5xx or no answer in time, every run on a good key completes, each once; a key the
provider refuses (401) in the middle of it is called once, its run fails at once and the key reads
as refused."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx

from tests.conftest import TenantHandle
from tests.fakes.llm import FakeLLMServer
from tests.faults.conftest import STARTUP, Cluster
from tests.faults.test_postgres_outage import finished, submit

RUNS = 10
TIMEOUT_SECONDS = 2


def script_storm(fake: FakeLLMServer, calls: int) -> int:
    """Ten answers at a time, three of them failures: 429, 503 and one too slow to wait for.
    Returns how many failures were scripted."""
    failures = 0
    for _ in range(calls // 10):
        fake.script_error("openai", 429, retry_after=0.2)
        fake.script_openai(times=2)
        fake.script_error("openai", 503)
        fake.script_openai(times=2)
        fake.script_openai(latency=TIMEOUT_SECONDS + 3)  # the client gives up first
        fake.script_openai(times=3)
        failures += 3
    return failures


async def store_key(client: httpx.AsyncClient, tenant: TenantHandle) -> str:
    key = f"sk-{uuid.uuid4().hex}"
    response = await client.put(
        "/v1/credentials/openai", json={"secret": {"api_key": key}}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    return key


async def test_runs_complete_through_a_storm_and_a_refused_key_fails_fast(
    cluster: Cluster,
) -> None:
    serve = cluster.spawn(
        "serve",
        http=True,
        OPSHUB_WORKER_CONCURRENCY="6",
        OPSHUB_LLM_MAX_RETRIES="3",
        OPSHUB_LLM_TIMEOUT_SECONDS=str(TIMEOUT_SECONDS),
    )
    await cluster.serving(serve)
    steady, refused = await cluster.tenant("Acme Outdoor"), await cluster.tenant("Blue Bakery")
    fake = cluster.fake_llm
    async with httpx.AsyncClient(base_url=serve.base_url, timeout=30) as client:
        good_key = await store_key(client, steady)
        bad_key = await store_key(client, refused)
        fake.valid_keys = {good_key}  # the provider revokes the other key from now on
        failures = script_storm(fake, calls=RUNS)

        task_ids = [await submit(client, steady, f"Summarise week {n}") for n in range(RUNS)]
        refused_task = await submit(client, refused, "Summarise the refused week")
        tasks = await asyncio.gather(
            *(finished(client, steady, task_id, STARTUP + 60) for task_id in task_ids)
        )
        refused_run = await finished(client, refused, refused_task, 60)
        listed = (await client.get("/v1/credentials", headers=refused.headers)).json()
        credential = {entry["provider"]: entry for entry in listed}["openai"]

    assert [t["status"] for t in tasks] == ["succeeded"] * RUNS, [t["error"] for t in tasks]
    assert fake.pending("openai") == 0  # every failure was served to some run
    calls = fake.requests_for("/v1/chat/completions")
    # One call a run, and one more for each failure: the model client's retry, nothing else.
    assert sum(call.api_key == good_key for call in calls) == RUNS + failures
    ids = [uuid.UUID(task_id) for task_id in task_ids]
    assert (
        await cluster.count(
            "SELECT count(*) FROM outbox WHERE event_type = 'task.succeeded' "
            "AND (data->>'task_id')::uuid = ANY($1::uuid[])",
            ids,
        )
        == RUNS
    )
    assert (
        await cluster.count(
            "SELECT count(*) FROM usage_records WHERE task_id = ANY($1::uuid[])", ids
        )
        == RUNS
    )  # each run billed once, whatever it went through

    assert (refused_run["status"], refused_run["attempt"]) == ("failed", 1)
    assert refused_run["error"]["code"] == "credential_invalid"
    refused_calls = [call for call in calls if call.api_key == bad_key]
    assert len(refused_calls) == 1, [json.dumps(call.body)[:80] for call in refused_calls]
    assert credential["status"] == "invalid"
    assert serve.alive()
