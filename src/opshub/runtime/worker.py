"""``opshub worker``: claims tasks from the queue and runs their crews, many at once.

One event loop holds every run of the process (its bookkeeping, events and memory); each crew's
kickoff runs in a large thread pool, since it waits on a model call most of its time. A claimed
task is held under a lease the worker renews; a worker that dies stops renewing and its tasks run
again elsewhere. Cancels arrive by NOTIFY at the commit of the request and stop a crew at its next
model call (the before-call hook in ``opshub.llm.metering``). A run's memories are written after
its task has ended, under the same lease (``opshub.runtime.memory_write_back``); the heartbeat
also takes over the write-backs of workers that died.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import structlog

from opshub.config import Settings
from opshub.credentials.errors import CredentialMissingError
from opshub.credentials.models import Provider, Source
from opshub.credentials.resolver import CredentialResolver
from opshub.crews import service as crews_service
from opshub.crews.registry import CREWS
from opshub.crews.routing import ChatRouter, RouteDecision
from opshub.db.engine import tenant_transaction
from opshub.db.sql import Record
from opshub.llm import metering
from opshub.llm import usage as usage_ledger
from opshub.llm.errors import BudgetExceededError
from opshub.llm.factory import LLMFactory, TenantLLM
from opshub.llm.warm_up import warm_up_model_sdks
from opshub.loops import Loops, keep_running, stop_all, stop_requested
from opshub.memory.embedders import Embedders
from opshub.memory.indexes import IndexBuilder
from opshub.memory.recalls import RecallTally
from opshub.memory.run_memory import TenantMemory
from opshub.outbound import guarded_client
from opshub.outbox import service as outbox
from opshub.process import freeze_startup_objects
from opshub.runtime import crew_run, crewai_bridge, genai_spans, queries, queue
from opshub.runtime.action_executor import ActionExecutor
from opshub.runtime.capacity import crews_per_worker
from opshub.runtime.live import LiveEvents
from opshub.runtime.memory_write_back import MemoryWriteBack
from opshub.runtime.run_outcome import RunOutcomes, TaskCancelledError, answer_of
from opshub.runtime.run_telemetry import traced_run
from opshub.runtime.task_events import RunEvents, TaskEventWriter
from opshub.runtime.webhooks import WebhookSender
from opshub.tasks import service as tasks_service
from opshub.tasks.models import EventType, TaskStatus
from opshub.tools.context import Connectors

log = structlog.get_logger(__name__)
MODEL_PREFERENCE = (Provider.openai, Provider.anthropic, Provider.openai_compatible)
CONNECTOR_TIMEOUT = httpx.Timeout(20.0, connect=5.0)


@dataclass
class Run:
    row: Record
    task: asyncio.Task[None]
    meter: metering.RunMeter | None = None

    @property
    def id(self) -> uuid.UUID:
        task_id: uuid.UUID = self.row["id"]
        return task_id

    def request_cancel(self) -> None:
        if self.meter is not None:
            self.meter.stop(TaskCancelledError("the task was cancelled"))
        else:
            self.task.cancel()


class Worker:
    def __init__(
        self,
        *,
        owner_pool: asyncpg.Pool,
        app_pool: asyncpg.Pool,
        resolver: CredentialResolver,
        live: LiveEvents,
        settings: Settings,
        database_url: str,
        embedders: Embedders,
        memory_indexes: IndexBuilder,
        loops: Loops,
        concurrency: int | None = None,
    ) -> None:
        """``database_url``: the owner's, for the chat router's checkpoints. ``loops``: the
        worker's own, nested in its process's (``Loops.nested``)."""
        self._loops = loops
        self._owner_pool = owner_pool
        self._app_pool = app_pool
        self._resolver = resolver
        self._live = live
        self._settings = settings
        self._concurrency = concurrency or crews_per_worker(
            settings, processes=settings.processes or 1
        )
        self._factory = LLMFactory(pool=app_pool, resolver=resolver, settings=settings)
        self._embedders = embedders
        self._memory_indexes = memory_indexes
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._runs: dict[uuid.UUID, Run] = {}
        self._cancel_checks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._writer: TaskEventWriter | None = None
        self._http: httpx.AsyncClient | None = None
        self._router = ChatRouter(database_url=database_url, crews=CREWS)
        self._outcomes = RunOutcomes(
            app_pool=app_pool,
            owner_pool=owner_pool,
            live=live,
            factory=self._factory,
            settings=settings,
            worker_id=self.worker_id,
        )
        self._recalls = RecallTally(owner_pool=owner_pool)
        self._write_backs = MemoryWriteBack(
            owner_pool=owner_pool,
            worker_id=self.worker_id,
            lease_seconds=settings.task_lease_seconds,
        )

    async def run(self) -> None:
        """Work until cancelled, then finish or hand back the running tasks."""
        loop = asyncio.get_running_loop()
        # A kickoff holds its pool thread from start to end, model calls included: at least a
        # thread per crew, so the crews the worker holds all have their calls under way.
        threads = max(self._settings.worker_threads, self._concurrency + 16)
        loop.set_default_executor(ThreadPoolExecutor(max_workers=threads))
        await asyncio.to_thread(self._install_crewai)
        await self._warm_up()
        freeze_startup_objects()
        self._writer = TaskEventWriter(pool=self._owner_pool, live=self._live)
        # One connection pool for every tool's and executor's calls to connected services.
        self._http = guarded_client(self._settings, timeout=CONNECTOR_TIMEOUT)
        await self._router.start()
        # Each loop outlives a lost database connection (``keep_running``), these included.
        writer = self._loops.start("events", self._writer.run)
        recalls = self._loops.start("recalls", self._recalls.run)
        executor = ActionExecutor(
            owner_pool=self._owner_pool,
            app_pool=self._app_pool,
            resolver=self._resolver,
            settings=self._settings,
            http=self._http,
            live=self._live,
        )
        webhooks = WebhookSender(pool=self._owner_pool, settings=self._settings)
        helpers = [
            self._loops.start("heartbeat", self._heartbeat),
            self._loops.start("webhooks", webhooks.run),
            self._loops.start("actions", executor.run),
            self._loops.start("notifications", self._listen),
        ]
        log.info("worker started", worker=self.worker_id, concurrency=self._concurrency)
        try:
            await keep_running("worker.claims", self._claim_loop)
        finally:
            try:
                await self._shut_down()
            finally:
                # The writers go last: they store the final events and recalls of the runs above.
                await stop_all(helpers)
                await stop_all([writer, recalls])
                await self._http.aclose()
                await self._router.stop()

    async def _listen(self) -> None:
        """New tasks and cancels by NOTIFY, on a connection of its own: when that connection is
        lost, this ends with an error and ``keep_running`` listens again on a new one."""
        lost = asyncio.Event()
        async with self._owner_pool.acquire() as conn:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener("opshub_tasks", self._on_new_task)
            await conn.add_listener("opshub_task_cancel", self._on_cancel)
            try:
                while not stop_requested() and not conn.is_closed():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), 1.0)
            finally:
                if not conn.is_closed():
                    await conn.remove_listener("opshub_tasks", self._on_new_task)
                    await conn.remove_listener("opshub_task_cancel", self._on_cancel)
        if not stop_requested():
            self._wake.set()  # tasks queued while nobody listened
            raise ConnectionError("the notification connection was lost")

    async def _warm_up(self) -> None:
        """Load what a fresh process loads on first use before the first claim: the first runs
        would otherwise wait for it together, and the worker's events behind its CPU."""
        try:
            await asyncio.gather(
                self._embedders.local.warm_up(), asyncio.to_thread(warm_up_model_sdks)
            )
        except Exception as exc:  # a run meets it again, and reports it; the worker starts
            log.warning("worker warm-up failed", error=str(exc))

    def _install_crewai(self) -> None:
        metering.install(self._settings.data_dir)
        crewai_bridge.install()
        genai_spans.install()

    async def _claim_loop(self) -> None:
        while not stop_requested():
            free = self._concurrency - len(self._runs)
            claimed = await self._claim(free) if free > 0 else []
            if claimed:
                # Their task.started events are stored and published before any of them goes
                # on: their first steps hold the loop and the GIL for ~100 ms each, and a
                # watcher would see "started" only after all of them. Held as runs meanwhile
                # (leases renewed, cancels heard).
                runs = [(row, self._open_run(row)) for row in claimed]
                started = asyncio.ensure_future(self._events_writer().flush())
                for row, events in runs:
                    work = self._run_task(row, events, started=started)
                    self._start(row, traced_run(row, work))
            if claimed and len(claimed) == free:
                continue
            with contextlib.suppress(TimeoutError):
                # Tasks waiting out a retry backoff have no NOTIFY: look again each second.
                await asyncio.wait_for(self._wake.wait(), 1.0)
            self._wake.clear()

    async def _claim(self, limit: int) -> list[Record]:
        claim = await queue.claim_next_tasks(
            self._owner_pool,
            worker_id=self.worker_id,
            limit=limit,
            lease_seconds=self._settings.task_lease_seconds,
            backoff_seconds=self._settings.task_retry_backoff_seconds,
            tenant_limit=self._settings.tenant_max_running_tasks,
        )
        for row in claim.expired:
            await self._record_requeued(row)
        return claim.tasks

    async def _record_requeued(self, row: Record) -> None:
        log.warning("task lease expired", task=str(row["id"]), status=row["status"])
        if row["status"] == TaskStatus.queued:
            return
        async with tenant_transaction(self._app_pool, row["tenant_id"]) as conn:
            await self._record_lost(conn, row)

    async def _record_lost(self, conn: asyncpg.Connection, row: Record) -> None:
        await outbox.emit(
            conn,
            tenant_id=row["tenant_id"],
            event_type=f"task.{row['status']}",
            data=tasks_service.domain_event_data(row),
        )
        error = row["error"] or {}
        event = await tasks_service.append_event(
            conn,
            tenant_id=row["tenant_id"],
            task_id=row["id"],
            type=f"task.{row['status']}",
            data={"error": error} if error else {},
        )
        await self._live.publish({row["id"]: [{**event.model_dump(mode="json")}]})

    def _start(self, row: Record, work: Coroutine[Any, Any, None]) -> None:
        run = Run(row=row, task=asyncio.create_task(self._execute(row, work)))
        self._runs[run.id] = run
        run.task.add_done_callback(functools.partial(self._finished, run.id))

    def _finished(self, task_id: uuid.UUID, _task: asyncio.Task[None]) -> None:
        self._runs.pop(task_id, None)
        self._wake.set()

    def _on_new_task(self, *_args: object) -> None:
        self._wake.set()

    def _on_cancel(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        """Anyone with the app role can NOTIFY this channel: the payload only says which run to
        look at, and the row whether it is to stop. A payload that is no task id is ignored."""
        try:
            task_id = uuid.UUID(payload)
        except ValueError:
            return
        if task_id in self._runs:
            check = asyncio.create_task(self._cancel_if_requested(task_id))
            self._cancel_checks.add(check)
            check.add_done_callback(self._cancel_checks.discard)

    async def _cancel_if_requested(self, task_id: uuid.UUID) -> None:
        try:
            requested = await queue.renew_leases(
                self._owner_pool,
                task_ids=[task_id],
                worker_id=self.worker_id,
                lease_seconds=self._settings.task_lease_seconds,
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # The heartbeat reads the same flag at its next renewal.
            log.warning("checking a cancel failed", error=type(exc).__name__)
            return
        run = self._runs.get(task_id)
        if run is not None and requested.get(task_id):
            run.request_cancel()

    async def _heartbeat(self) -> None:
        interval = self._settings.task_lease_seconds / 3
        while not stop_requested():
            await asyncio.sleep(interval)
            try:
                await self._adopt_lost_write_backs()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("looking for lost memory write-backs failed", error=type(exc).__name__)
            if not self._runs:
                continue
            # Only the runs asked about: runs claimed while the renewal is under way hold fresh
            # leases and are not in its answer.
            asked = list(self._runs)
            try:
                renewed = await queue.renew_leases(
                    self._owner_pool,
                    task_ids=asked,
                    worker_id=self.worker_id,
                    lease_seconds=self._settings.task_lease_seconds,
                )
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("lease renewal failed", error=type(exc).__name__)
                continue
            for task_id in asked:
                run = self._runs.get(task_id)
                if run is None:
                    continue
                if task_id not in renewed and not run.task.done():
                    # Another worker has it now (this one was presumed dead): stop quietly.
                    log.warning("lease lost; abandoning run", task=str(task_id))
                    run.task.cancel()
                elif renewed.get(task_id):
                    run.request_cancel()

    async def _shut_down(self) -> None:
        runs = [run.task for run in self._runs.values()]
        if runs:
            log.info("worker stopping; waiting for running crews", running=len(runs))
            await asyncio.wait(runs, timeout=self._settings.worker_shutdown_grace_seconds)
        unfinished = [run for run in self._runs.values() if not run.task.done()]
        if unfinished:
            await queue.release(
                self._owner_pool, task_ids=[run.id for run in unfinished], worker_id=self.worker_id
            )
            for run in unfinished:
                run.task.cancel()
            await asyncio.wait([run.task for run in unfinished], timeout=5)
            log.info("worker handed back unfinished tasks", released=len(unfinished))
        await self._memory_indexes.stop()

    async def _adopt_lost_write_backs(self) -> None:
        free = self._concurrency - len(self._runs)
        if free <= 0:
            return
        for row in await self._write_backs.claim_lost(limit=free):
            if row["id"] not in self._runs:  # else still being written here, late renewing
                log.warning("taking over a lost memory write-back", task=str(row["id"]))
                self._start(row, self._write_back_lost(row))

    async def _execute(self, row: Record, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database went away under the bookkeeping
            # The lease is no longer renewed: the task runs again once it expires.
            log.error("task bookkeeping failed", task=str(row["id"]), exc_info=exc)

    def _events_writer(self) -> TaskEventWriter:
        assert self._writer is not None  # noqa: S101 - set before the first claim
        return self._writer

    def _open_run(self, row: Record) -> RunEvents:
        """The claimed run's event sequence, opened with its ``task.started``."""
        events = self._events_writer().open_run(
            tenant_id=row["tenant_id"], task_id=row["id"], last_seq=row["last_seq"]
        )
        events.emit(EventType.task_started, crew=row["crew"], attempt=row["attempt"])
        return events

    async def _run_task(
        self, row: Record, events: RunEvents, *, started: asyncio.Future[None]
    ) -> None:
        # Shielded: a run cancelled while it waits must not cancel its batch's flush.
        await asyncio.shield(started)
        tenant_id, task_id = row["tenant_id"], row["id"]
        crew_name = row["crew"]
        run = self._runs.get(task_id)
        memory = self._memory(tenant_id)
        try:
            # No crew yet: the router runs on the tenant's default model.
            llm = await self._pick_model(tenant_id, crew_name)
            meter = await self._meter(row, llm)
            if run is not None:
                run.meter = meter
            if row["cancel_requested"]:
                meter.stop(TaskCancelledError("the task was cancelled"))
            if crew_name is None:
                routed = await self._route(row, llm, meter, events)
                if routed.crew is None:
                    await self._outcomes.complete(
                        row, events, TaskStatus.succeeded, meter, result=routed.question
                    )
                    return
                crew_name = routed.crew
                llm = await self._pick_model(tenant_id, crew_name)
                meter.provider, meter.billed_to = llm.provider.value, llm.billed_to
            result = await self._kickoff(row, crew_name, llm, meter, events, memory)
        except asyncio.CancelledError:
            # Abandoned (lease lost, or handed back at shutdown): the crew's thread may still be
            # going; it stops at its next model call and writes nothing more.
            events.close()
            if run is not None and run.meter is not None:
                run.meter.stop(TaskCancelledError("the run was handed to another worker"))
            raise
        except Exception as exc:  # every failure ends the task with a reason
            await self._outcomes.fail(row, events, exc, run.meter if run else None)
            return
        if await self._outcomes.complete(
            row, events, TaskStatus.succeeded, meter, result=result, remember=True
        ):
            await self._write_back(row, crew_name, result, llm, memory)

    async def _write_back(
        self,
        row: Record,
        crew_name: str,
        answer: str,
        llm: TenantLLM[Any] | None,
        memory: TenantMemory,
    ) -> None:
        """After the task has ended: its memories, the extraction call metered on its own."""
        meter = None
        if llm is not None:
            try:
                meter = await self._meter(row, llm, run_fee=False)
            except BudgetExceededError:  # spent meanwhile: the outcome needs no model
                llm = None
        await self._write_backs.write(
            row,
            crew=crew_name,
            answer=answer,
            memory=memory,
            llm=llm.llm if llm is not None else None,
            meter=meter,
        )

    async def _write_back_lost(self, row: Record) -> None:
        """A write-back whose worker died: the outcome, and the facts if the model still answers."""
        llm: TenantLLM[Any] | None
        try:
            llm = await self._pick_model(row["tenant_id"], row["crew"])
        except Exception as exc:  # the key is gone or refused: the outcome needs no model
            log.warning("no model for a memory write-back", error=type(exc).__name__)
            llm = None
        answer = answer_of(row["result"] or "")
        await self._write_back(row, row["crew"], answer, llm, self._memory(row["tenant_id"]))

    async def _pick_model(self, tenant_id: uuid.UUID, crew: str | None) -> TenantLLM[Any]:
        """The tenant's pick for the crew, else the first provider in preference order it has
        a key for (BYOK or platform)."""
        picked = None
        if crew is not None:
            async with tenant_transaction(self._app_pool, tenant_id) as conn:
                picked = await crews_service.get_model(conn, tenant_id=tenant_id, crew=crew)
        if picked is not None:
            provider, model = picked
            return await self._factory.for_tenant(
                tenant_id=tenant_id, provider=Provider(provider), model=model
            )
        for provider in MODEL_PREFERENCE:
            try:
                await self._resolver.resolve(tenant_id=tenant_id, provider=provider)
            except CredentialMissingError:
                continue
            return await self._factory.default_for(tenant_id=tenant_id, provider=provider)
        raise CredentialMissingError(
            "no model key: store one with PUT /v1/credentials/openai (or anthropic, "
            "openai_compatible)"
        )

    async def _route(
        self, row: Record, llm: TenantLLM[Any], meter: metering.RunMeter, events: RunEvents
    ) -> RouteDecision:
        """A message without a crew: the chat router picks one or asks the user back."""
        token = metering.current_run.set(meter)
        try:
            decision = await self._router.route(
                tenant_id=row["tenant_id"],
                thread_id=row["thread_id"],
                message=row["input"],
                llm=llm.llm,
            )
        finally:
            metering.current_run.reset(token)
        if meter.stopped_by is not None:
            raise meter.stopped_by
        events.emit(EventType.task_routed, crew=decision.crew, text=decision.reason)
        if decision.crew is not None:
            async with tenant_transaction(self._app_pool, row["tenant_id"]) as conn:
                await queries.set_task_crew(
                    conn, tenant_id=row["tenant_id"], task_id=row["id"], crew=decision.crew
                )
        return decision

    async def _meter(
        self, row: Record, llm: TenantLLM[Any], *, run_fee: bool = True
    ) -> metering.RunMeter:
        """``run_fee``: charge the platform's BYOK fee for the run (once per run)."""
        tenant_id = row["tenant_id"]
        budget_left: Decimal | None = None
        if llm.billed_to is Source.platform:
            async with tenant_transaction(self._app_pool, tenant_id) as conn:
                await usage_ledger.ensure_within_budget(conn, tenant_id=tenant_id)
                budget = await usage_ledger.get_budget(conn, tenant_id=tenant_id)
                if budget is not None:
                    spent = await usage_ledger.platform_spend_this_month(conn, tenant_id=tenant_id)
                    budget_left = budget - spent
        return metering.RunMeter(
            tenant_id=tenant_id,
            task_id=row["id"],
            provider=llm.provider.value,
            billed_to=llm.billed_to,
            prices=self._settings.model_prices,
            budget_left_usd=budget_left,
            byok_run_fee_usd=self._settings.byok_run_fee_usd if run_fee else Decimal(0),
        )

    async def _history(self, row: Record) -> str:
        if row["thread_id"] is None or self._settings.thread_history_messages == 0:
            return ""
        async with tenant_transaction(self._app_pool, row["tenant_id"]) as conn:
            turns = await queries.thread_history(
                conn,
                tenant_id=row["tenant_id"],
                thread_id=row["thread_id"],
                task_id=row["id"],
                limit=self._settings.thread_history_messages,
            )
        if not turns:
            return ""
        lines = [f"{turn['role']}: {turn['content']}" for turn in turns]
        return "The conversation so far:\n" + "\n".join(lines) + "\n"

    async def _kickoff(
        self,
        row: Record,
        crew_name: str,
        llm: TenantLLM[Any],
        meter: metering.RunMeter,
        events: RunEvents,
        memory: TenantMemory,
    ) -> str:
        prepared = await crew_run.prepare(
            row,
            crew_name=crew_name,
            llm=llm.llm,
            memory=memory,
            app_pool=self._app_pool,
            connectors=self._connectors(),
            events=events,
            history=await self._history(row),
            memory_tokens=self._settings.memory_context_tokens,
            stream=self._settings.stream_tokens,
        )
        meter_token = metering.current_run.set(meter)
        events_token = crewai_bridge.current_events.set(events)
        try:
            output = await asyncio.to_thread(_kickoff, prepared.crew, prepared.inputs)
        finally:
            metering.current_run.reset(meter_token)
            crewai_bridge.current_events.reset(events_token)
        if meter.stopped_by is not None:
            raise meter.stopped_by
        return str(output.raw)

    def _memory(self, tenant_id: uuid.UUID) -> TenantMemory:
        """The memory one run reads and writes (each text it embeds, embedded once)."""
        return TenantMemory(
            app_pool=self._app_pool,
            tenant_id=tenant_id,
            embedders=self._embedders.for_run(),
            index_builder=self._memory_indexes,
            ef_search=self._settings.memory_ef_search,
            extraction_default=self._settings.memory_extraction,
            recalls=self._recalls,
        )

    def _connectors(self) -> Connectors:
        assert self._http is not None  # noqa: S101 - opened before the first claim
        return Connectors(resolver=self._resolver, settings=self._settings, http=self._http)


def _kickoff(crew: Any, inputs: dict[str, Any]) -> Any:
    """The whole kickoff in one pool thread (the context — meter, events — copied into it).

    ``akickoff`` runs CrewAI's own CPU work (prompt building, parsing, its event bus) on the
    worker's event loop, where it delays everything else the loop serves: claims, lease renewals
    and the event writer, which is what live subscribers wait on.
    """
    from crewai.types.streaming import CrewStreamingOutput

    output = crew.kickoff(inputs=inputs)
    if isinstance(output, CrewStreamingOutput):
        for _chunk in output:  # tokens reach the run's events from CrewAI's bus
            pass
        output = output.result
    return output
