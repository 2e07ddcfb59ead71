"""Executes approved actions, each once, in every worker.

An approval commits with a NOTIFY on ``opshub_actions``; an executor claims the action under a
lease (``FOR UPDATE SKIP LOCKED``: one executor at a time), renews the lease while the call is
under way, and records the outcome only while the lease is still its own. An executor that dies
mid-call stops renewing; once the lease runs out another one takes the action over and runs it
again, which executors are written to survive (``opshub.actions.execution``). Rate limits and
outages retry later with backoff, up to ``action_max_attempts``; any other refusal fails the
action at once, and a refused credential is also marked invalid where the tenant looks.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import asyncpg
import httpx
import structlog
from pydantic_core import to_jsonable_python

from opshub.actions import outcomes
from opshub.actions.execution import ExecutionContext, Executor
from opshub.actions.executors import EXECUTORS
from opshub.actions.kinds import ActionKind, McpToolCall, parse_payload, provider_for
from opshub.actions.schemas import ActionRead
from opshub.config import Settings
from opshub.connectors.errors import (
    ConnectorAuthError,
    ConnectorError,
    ConnectorRateLimitedError,
    ConnectorRequestError,
    ConnectorResponseError,
    ConnectorUnavailableError,
)
from opshub.credentials.errors import CredentialStoreError
from opshub.credentials.resolver import CredentialResolver, ResolvedCredential
from opshub.db.engine import tenant_transaction
from opshub.db.sql import Record
from opshub.errors import DomainError
from opshub.loops import stop_all, stop_requested
from opshub.mcp_servers import service as mcp_servers_service
from opshub.mcp_servers.client import McpServer
from opshub.observability.actions import action_recorded, traced_execution
from opshub.outbound import guarded_client
from opshub.runtime.live import LiveEvents, publish_stored
from opshub.tasks import service as tasks_service

log = structlog.get_logger(__name__)
CHANNEL = "opshub_actions"
POLL_SECONDS = 1.0  # retries waiting out a backoff and expired leases have no NOTIFY
SHUTDOWN_GRACE_SECONDS = 3.0  # the worker gives its helpers 5 s to stop
MAX_BACKOFF_SECONDS = 300.0
HTTP_TIMEOUT = httpx.Timeout(20.0, connect=5.0)
ERROR_CODES: dict[type[ConnectorError], str] = {
    ConnectorAuthError: "credential_invalid",
    ConnectorRateLimitedError: "rate_limited",
    ConnectorUnavailableError: "connector_unavailable",
    ConnectorRequestError: "connector_request_refused",
    ConnectorResponseError: "connector_response_invalid",
}


def _error(exc: ConnectorError) -> dict[str, Any]:
    code = next((c for cls, c in ERROR_CODES.items() if isinstance(exc, cls)), "connector_error")
    return {"code": code, "message": exc.message, "provider": exc.provider.value}


class ActionExecutor:
    def __init__(
        self,
        *,
        owner_pool: asyncpg.Pool,
        app_pool: asyncpg.Pool,
        resolver: CredentialResolver,
        settings: Settings,
        http: httpx.AsyncClient | None = None,
        live: LiveEvents | None = None,
        executors: Mapping[ActionKind, Executor] | None = None,
    ) -> None:
        """``executors``: the registry (``opshub.actions.executors``) unless given (tests);
        ``live``: where watchers of the task hear of the outcome."""
        self._owner_pool = owner_pool
        self._app_pool = app_pool
        self._resolver = resolver
        self._settings = settings
        self._http = http
        self._live = live
        self._executors = EXECUTORS if executors is None else executors
        self.executor_id = f"executor:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._inflight: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._recording: set[uuid.UUID] = set()  # its outcome is being written: not "lost"
        self._wake = asyncio.Event()

    async def run(self) -> None:
        """Execute approved actions until cancelled; then finish or hand back the ones in flight."""
        own_http = self._http is None
        http = self._http or guarded_client(self._settings, timeout=HTTP_TIMEOUT)
        listener = await self._listen()
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            await self._claim_loop(http)
        finally:
            await stop_all([heartbeat])
            await self._shut_down()
            if listener is not None:
                with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    await listener.remove_listener(CHANNEL, self._on_notify)
                await self._owner_pool.release(listener)
            if own_http:
                await http.aclose()

    async def _listen(self) -> asyncpg.Connection | None:
        try:
            listener: asyncpg.Connection = await self._owner_pool.acquire()
        except (OSError, asyncpg.PostgresError) as exc:
            # Polling still finds every approved action, a second later.
            log.warning("action executor polls without NOTIFY", error=type(exc).__name__)
            return None
        await listener.add_listener(CHANNEL, self._on_notify)
        return listener

    def _on_notify(self, *_args: object) -> None:
        self._wake.set()

    async def _claim_loop(self, http: httpx.AsyncClient) -> None:
        while not stop_requested():
            free = self._settings.action_concurrency - len(self._inflight)
            claimed = await self._claim(free) if free > 0 else []
            for row in claimed:
                task = asyncio.create_task(traced_execution(row, self._run_one(row, http)))
                self._inflight[row["id"]] = task
                task.add_done_callback(functools.partial(self._finished, row["id"]))
            if claimed and len(claimed) == free:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
            self._wake.clear()

    def _finished(self, action_id: uuid.UUID, _task: asyncio.Task[None]) -> None:
        self._inflight.pop(action_id, None)
        self._wake.set()

    async def _claim(self, limit: int) -> list[Record]:
        try:
            async with self._owner_pool.acquire() as conn, conn.transaction():
                rows = await outcomes.claim(
                    conn,
                    lease_owner=self.executor_id,
                    limit=limit,
                    lease_seconds=self._settings.action_lease_seconds,
                )
                starting = [r["id"] for r in rows if r["attempts"] <= self._max_attempts]
                if starting:
                    await outcomes.audit_started(conn, action_ids=starting, actor=self.executor_id)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("action executor waiting for the database", error=type(exc).__name__)
            return []
        return rows

    @property
    def _max_attempts(self) -> int:
        return self._settings.action_max_attempts

    async def _heartbeat(self) -> None:
        interval = self._settings.action_lease_seconds / 3
        while not stop_requested():
            await asyncio.sleep(interval)
            asked = list(self._inflight)
            if not asked:
                continue
            try:
                async with self._owner_pool.acquire() as conn:
                    held = await outcomes.renew_leases(
                        conn,
                        action_ids=asked,
                        lease_owner=self.executor_id,
                        lease_seconds=self._settings.action_lease_seconds,
                    )
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("action lease renewal failed", error=type(exc).__name__)
                continue
            for action_id in set(asked) - held - self._recording:
                task = self._inflight.get(action_id)
                if task is not None and not task.done():
                    # Presumed dead and taken over: two executors must not call at once.
                    log.warning("action lease lost; abandoning it", action=str(action_id))
                    task.cancel()

    async def _shut_down(self) -> None:
        running = list(self._inflight.items())
        if not running:
            return
        await asyncio.wait([task for _, task in running], timeout=SHUTDOWN_GRACE_SECONDS)
        unfinished = [(action_id, task) for action_id, task in running if not task.done()]
        for _, task in unfinished:
            task.cancel()
        if unfinished:
            await asyncio.wait([task for _, task in unfinished], timeout=1.0)
        # Handed back only once its call has stopped: never two calls for one action at once.
        stopped = [action_id for action_id, task in unfinished if task.done()]
        if stopped:
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                async with self._owner_pool.acquire() as conn:
                    await outcomes.release(conn, action_ids=stopped, lease_owner=self.executor_id)
            log.info("action executor handed back unfinished actions", released=len(stopped))

    async def _run_one(self, row: Record, http: httpx.AsyncClient) -> None:
        try:
            if row["attempts"] > self._max_attempts:
                # Its last attempt's executor died mid-call: no further attempt is allowed.
                message = "the worker executing this action stopped responding on every attempt"
                await self._fail(row, {"code": "executor_lost", "message": message})
                return
            await self._execute(row, http)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database went away under the bookkeeping
            # The lease is no longer renewed once this returns: the action runs again later.
            log.error("action bookkeeping failed", action=str(row["id"]), error=type(exc).__name__)

    async def _execute(self, row: Record, http: httpx.AsyncClient) -> None:
        tenant_id, action_id = row["tenant_id"], row["id"]
        kind = ActionKind(row["kind"])
        executor = self._executors.get(kind)
        if executor is None:
            message = f"this hub has no executor for {kind.value} actions"
            await self._fail(row, {"code": "no_executor", "message": message})
            return
        try:
            payload = parse_payload(kind, row["payload"])
            provider = provider_for(payload)
            credential: ResolvedCredential | None = None
            if provider is not None:
                credential = await self._resolver.resolve(tenant_id=tenant_id, provider=provider)
            mcp_server: McpServer | None = None
            if isinstance(payload, McpToolCall):  # executed with the server as registered now
                mcp_server = await self._mcp_server(tenant_id, payload)
            context = ExecutionContext(
                action_id=action_id,
                tenant_id=tenant_id,
                http=http,
                settings=self._settings,
                credential=credential,
                mcp_server=mcp_server,
            )
            outcome = await executor(context, payload)
        except ConnectorAuthError as exc:
            await self._resolver.mark_invalid(
                tenant_id=tenant_id, provider=exc.provider, detail=exc.message
            )
            await self._fail(row, _error(exc))
        except (ConnectorRateLimitedError, ConnectorUnavailableError) as exc:
            hint = exc.retry_after if isinstance(exc, ConnectorRateLimitedError) else None
            await self._retry_or_fail(row, _error(exc), hint)
        except ConnectorError as exc:
            await self._fail(row, _error(exc))
        except CredentialStoreError as exc:  # the secret store is down: the operator's to fix
            await self._retry_or_fail(row, {"code": exc.code, "message": exc.message}, None)
        except DomainError as exc:  # no credential to execute with, and the like
            await self._fail(row, {"code": exc.code, "message": exc.message})
        except Exception as exc:
            log.error("action executor raised", action=str(action_id), error=type(exc).__name__)
            message = "executing the action failed unexpectedly"
            await self._retry_or_fail(row, {"code": "internal_error", "message": message}, None)
        else:
            await self._record(
                outcomes.record_executed, row, outcome=to_jsonable_python(outcome or {})
            )

    async def _mcp_server(self, tenant_id: uuid.UUID, payload: McpToolCall) -> McpServer:
        async with tenant_transaction(self._app_pool, tenant_id) as conn:
            return await mcp_servers_service.connection(
                conn,
                tenant_id=tenant_id,
                name=payload.server,
                store=self._resolver.store,
                allow_internal_urls=self._settings.allow_internal_urls,
            )

    async def _retry_or_fail(
        self, row: Record, error: dict[str, Any], retry_after: float | None
    ) -> None:
        if row["attempts"] >= self._max_attempts:
            await self._fail(row, error)
            return
        backoff = self._settings.action_retry_backoff_seconds * 2 ** (row["attempts"] - 1)
        delay = min(retry_after if retry_after is not None else backoff, MAX_BACKOFF_SECONDS)
        await self._record(outcomes.retry_later, row, error=error, delay_seconds=delay)

    async def _fail(self, row: Record, error: dict[str, Any]) -> None:
        await self._record(outcomes.record_failed, row, error=error)

    async def _record(
        self, record: Callable[..., Awaitable[ActionRead | None]], row: Record, **outcome: Any
    ) -> None:
        # A renewal that runs while this commits no longer finds the lease (the action left
        # 'approved'); the heartbeat must not take that for a takeover and cancel the commit.
        self._recording.add(row["id"])
        action_recorded(row, record.__name__)
        try:
            async with tenant_transaction(self._app_pool, row["tenant_id"]) as conn:
                after = await tasks_service.last_event_seq(
                    conn, tenant_id=row["tenant_id"], task_id=row["task_id"]
                )
                recorded = await record(
                    conn,
                    tenant_id=row["tenant_id"],
                    action_id=row["id"],
                    lease_owner=self.executor_id,
                    **outcome,
                )
        finally:
            self._recording.discard(row["id"])
        if recorded is None:
            log.warning("action no longer held by this executor", action=str(row["id"]))
        elif self._live is not None:
            await publish_stored(
                self._live,
                self._app_pool,
                tenant_id=row["tenant_id"],
                task_id=row["task_id"],
                after=after,
            )
