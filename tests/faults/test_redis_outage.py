"""Redis killed and started again under ``opshub serve``: sign-in keeps working, runs finish, and
once Redis is back the outbox delivers what happened meanwhile, once each."""

from __future__ import annotations

import httpx
import orjson
from redis.asyncio import Redis

from opshub.outbox.service import STREAM
from tests.faults.conftest import STARTUP, Cluster, until
from tests.faults.test_postgres_outage import finished, store_openai_key, submit


async def test_sign_in_runs_and_the_outbox_outlive_a_redis_restart(cluster: Cluster) -> None:
    serve = cluster.spawn("serve", http=True)
    await cluster.serving(serve)
    tenant = await cluster.tenant("Acme Outdoor")
    async with httpx.AsyncClient(base_url=serve.base_url, timeout=30) as client:
        await store_openai_key(client, tenant)
        before = await submit(client, tenant, "Summarise last week")
        assert (await finished(client, tenant, before, STARTUP))["status"] == "succeeded"

        cluster.redis.kill()
        signed_in = await client.post(
            "/v1/auth/token", json={"email": tenant.email, "password": tenant.password}
        )
        assert signed_in.status_code == 200, signed_in.text
        during = await submit(client, tenant, "Summarise this week")
        task = await finished(client, tenant, during, 60)
        assert (task["status"], task["result"]) == (
            "succeeded",
            "Final answer from the fake model.",
        )
        readiness = (await client.get("/readyz")).json()
        assert readiness["checks"]["redis"].startswith("unavailable")

        cluster.redis.start()  # empty: the stream starts again from what the outbox still holds
        redis = Redis.from_url(cluster.redis.url)
        try:

            async def delivered() -> list[dict[bytes, bytes]] | None:
                entries = [fields for _, fields in await redis.xrange(STREAM)]
                ended = [
                    fields
                    for fields in entries
                    if fields[b"event_type"] == b"task.succeeded"
                    and orjson.loads(fields[b"data"])["task_id"] == during
                ]
                return ended or None

            ended = await until(delivered, 60, "the outbox to deliver after Redis came back")
            assert len(ended) == 1
        finally:
            await redis.aclose()
        assert (await client.get("/readyz")).status_code == 200
        assert serve.alive()
