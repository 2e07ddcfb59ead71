"""Webhooks: a task with a ``webhook_url`` gets a signed POST when it finishes.

The delivery row commits with the task's outcome; senders (one per worker) post due deliveries,
retrying with exponential backoff. The body is signed with the tenant's webhook secret:
``X-Opshub-Signature: sha256=<hex HMAC-SHA256 of the raw body>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac

import asyncpg
import httpx
import orjson
import structlog

from opshub import __version__
from opshub.config import Settings
from opshub.outbound import PublicOnlyTransport
from opshub.runtime.loops import stop_requested
from opshub.runtime.queue import QUERIES

log = structlog.get_logger(__name__)
SIGNATURE_HEADER = "X-Opshub-Signature"
BATCH = 20


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


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
            rows = await conn.fetch(
                QUERIES["due_webhooks"], self._settings.webhook_max_attempts, BATCH
            )
            results = await asyncio.gather(*(self._post(client, row) for row in rows))
            for row, (status, error) in zip(rows, results, strict=True):
                if error is None:
                    await conn.execute(QUERIES["webhook_delivered"], row["id"], status)
                else:
                    delay = min(2 ** row["attempts"], 3600)
                    await conn.execute(QUERIES["webhook_failed"], row["id"], status, error, delay)
        return len(rows)

    async def _post(
        self, client: httpx.AsyncClient, row: asyncpg.Record
    ) -> tuple[int | None, str | None]:
        body = orjson.dumps(row["body"])
        headers = {"Content-Type": "application/json"}
        if row["webhook_secret"]:
            headers[SIGNATURE_HEADER] = sign(row["webhook_secret"], body)
        try:
            response = await client.post(row["url"], content=body, headers=headers)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}"
        with contextlib.suppress(Exception):
            await response.aclose()
        if 200 <= response.status_code < 300:
            return response.status_code, None
        return response.status_code, f"HTTP {response.status_code}"
