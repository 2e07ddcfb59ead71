"""Webhooks: a task with a ``webhook_url`` gets a signed POST when it finishes.

The delivery row commits with the task's outcome; senders (one per worker) post due deliveries,
retrying with exponential backoff, and log every attempt with the receiver's status. Each is
signed as Standard Webhooks (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``) with
the tenant's ``whsec_`` secrets and, while the tenant's old secret lives, ``X-Opshub-Signature``
with that one (opshub.webhooks.signing).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import asyncpg
import httpx
import orjson
import structlog

from opshub import __version__
from opshub.config import Settings
from opshub.loops import stop_requested
from opshub.observability.metrics import WEBHOOK_DELIVERIES
from opshub.outbound import PublicOnlyTransport
from opshub.runtime import queries
from opshub.webhooks import signing

log = structlog.get_logger(__name__)
BATCH = 20


class WebhookSender:
    def __init__(self, *, pool: asyncpg.Pool, settings: Settings) -> None:
        self._pool = pool
        self._settings = settings

    async def run(self, *, poll_seconds: float = 1.0) -> None:
        # The URL was checked when the task was submitted; its name may resolve elsewhere now.
        transport = None if self._settings.allow_internal_urls else PublicOnlyTransport()
        async with httpx.AsyncClient(
            timeout=self._settings.webhook_timeout_seconds,
            headers={"User-Agent": f"opshub/{__version__}"},
            follow_redirects=False,
            transport=transport,
        ) as client:
            while not stop_requested():
                try:
                    sent = await self.send_due(client)
                except (OSError, asyncpg.PostgresError) as exc:
                    log.warning("webhook sender waiting for the database", error=type(exc).__name__)
                    sent = 0
                if sent < BATCH:
                    await asyncio.sleep(poll_seconds)

    async def send_due(self, client: httpx.AsyncClient) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await queries.due_webhooks(
                conn, max_attempts=self._settings.webhook_max_attempts, limit=BATCH
            )
            results = await asyncio.gather(*(self._post(client, row) for row in rows))
            for row, (status, error) in zip(rows, results, strict=True):
                await queries.log_webhook_attempt(
                    conn,
                    tenant_id=row["tenant_id"],
                    delivery_id=row["id"],
                    status_code=status,
                    error=error,
                )
                WEBHOOK_DELIVERIES.labels("delivered" if error is None else "failed").inc()
                if error is None:
                    await queries.webhook_delivered(conn, delivery_id=row["id"], status_code=status)
                else:
                    delay = min(2 ** row["attempts"], 3600)
                    await queries.webhook_failed(
                        conn,
                        delivery_id=row["id"],
                        status_code=status,
                        error=error,
                        delay_seconds=delay,
                    )
        return len(rows)

    async def _post(
        self, client: httpx.AsyncClient, row: asyncpg.Record
    ) -> tuple[int | None, str | None]:
        body = orjson.dumps(row["body"])
        headers = {"Content-Type": "application/json"}
        headers |= signing.headers(
            msg_id=signing.message_id(row["message_id"]),
            timestamp=int(time.time()),
            body=body,
            standard=row["standard_secrets"],
            legacy=row["legacy_secret"],
        )
        try:
            response = await client.post(row["url"], content=body, headers=headers)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}"
        with contextlib.suppress(Exception):
            await response.aclose()
        if 200 <= response.status_code < 300:
            return response.status_code, None
        return response.status_code, f"HTTP {response.status_code}"
