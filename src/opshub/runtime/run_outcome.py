"""How a run ends: its outcome, usage, thread turn, webhook and final event stored together,
a retry scheduled for a transient failure, or the task left awaiting approval of its actions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from functools import cached_property
from typing import Any

import asyncpg
import structlog

from opshub.actions import service as actions_service
from opshub.config import Settings
from opshub.credentials.errors import CredentialStoreError
from opshub.credentials.models import Provider
from opshub.db.engine import tenant_transaction
from opshub.db.sql import Connection, Record
from opshub.errors import DomainError
from opshub.llm import metering
from opshub.llm.errors import ProviderUnavailableError
from opshub.llm.factory import LLMFactory
from opshub.runtime import queries
from opshub.runtime.live import LiveEvents
from opshub.runtime.run_telemetry import task_ended, task_retrying
from opshub.runtime.task_events import RunEvents, live_event
from opshub.tasks import service as tasks_service
from opshub.tasks.models import TaskStatus

log = structlog.get_logger(__name__)
Row = queries.TaskEventRow


class TaskCancelledError(DomainError):
    code = "cancelled"


class RunFailedError(DomainError):
    code = "internal_error"


class RunOutcomes:
    def __init__(
        self,
        *,
        app_pool: asyncpg.Pool,
        owner_pool: asyncpg.Pool,
        live: LiveEvents,
        factory: LLMFactory,
        settings: Settings,
        worker_id: str,
    ) -> None:
        self._app_pool = app_pool
        self._owner_pool = owner_pool
        self._live = live
        self._factory = factory
        self._settings = settings
        self.worker_id = worker_id

    async def fail(
        self,
        row: Record,
        events: RunEvents,
        exc: Exception,
        meter: metering.RunMeter | None,
    ) -> None:
        error = meter.stopped_by if meter and meter.stopped_by else None
        if error is None and isinstance(exc, DomainError):
            error = exc
        if error is None and meter is not None:
            error = await self._factory.report_failure(
                tenant_id=row["tenant_id"], provider=Provider(meter.provider), error=exc
            )
        if isinstance(error, TaskCancelledError):
            await self.complete(row, events, TaskStatus.cancelled, meter)
            return
        if error is None:
            log.error("crew run failed", task=str(row["id"]), exc_info=exc)
            error = RunFailedError("the run failed unexpectedly; retry it or contact support")
        # Vault sealed or down comes back by itself, as a provider does: the run waits it out.
        transient = isinstance(
            error, (ProviderUnavailableError, CredentialStoreError, RunFailedError)
        )
        if transient and row["attempt"] < row["max_attempts"]:
            await self._retry_later(row, events, error)
            return
        await self.complete(row, events, TaskStatus.failed, meter, error=error)

    async def _retry_later(self, row: Record, events: RunEvents, error: DomainError) -> None:
        delay = self._settings.task_retry_backoff_seconds * 2 ** (row["attempt"] - 1)
        task_retrying(row, error_code=error.code)
        events.emit("task.retrying", error={"code": error.code, "message": error.message})
        await events.flush()
        async with tenant_transaction(self._app_pool, row["tenant_id"]) as conn:
            await queries.retry_later(
                conn,
                tenant_id=row["tenant_id"],
                task_id=row["id"],
                worker_id=self.worker_id,
                delay_seconds=min(delay, 300),
                error={"code": error.code, "message": error.message},
            )

    async def complete(
        self,
        row: Record,
        events: RunEvents,
        status: TaskStatus,
        meter: metering.RunMeter | None,
        *,
        result: str | None = None,
        error: DomainError | None = None,
        remember: bool = False,
    ) -> bool:
        """Store the outcome, usage, thread turn, webhook and last event together, then say so.

        Most runs end in one statement (``end_run``) that is its own transaction: it holds a
        transaction id only while it runs, and every tenant's ``/v1/events`` waits behind an
        open one. As the owner, like the queue's statements: the tenant is in its predicates.
        A task with a webhook, or with actions still open, ends in a tenant transaction.

        ``remember``: the run's memories are still to write; the task keeps its lease for them.
        True when the task ended that way (it is this worker's to write them).
        """
        await events.flush()  # every step is stored before the task reads as finished
        remember = remember and status is TaskStatus.succeeded
        ending = RunEnding(
            tenant_id=row["tenant_id"],
            task_id=row["id"],
            seq=events.end(),
            status=status,
            result=result,
            error={"code": error.code, "message": error.message} if error else None,
            meter=meter,
        )
        finished = None
        if not row["webhook_url"]:
            try:
                async with self._owner_pool.acquire() as conn:
                    finished = await self._end(conn, ending, remember=remember)
            except asyncpg.InsufficientResourcesError as exc:
                # No new connection to be had (too many clients): the tenant transaction's
                # pool has its own open ones.
                log.warning("run ending on the tenant's connection", error=type(exc).__name__)
        if finished is None:
            finished, ending = await self._end_in_transaction(row, ending, remember=remember)
        if finished is None:
            log.warning("task no longer held by this worker; outcome dropped", task=str(row["id"]))
            return False
        task_ended(
            finished,
            status=ending.status.value,
            error_code=error.code if error else None,
            meter=meter,
        )
        await self._live.publish({row["id"]: [live_event(ending.event)]}, notified=True)
        return remember

    async def _end_in_transaction(
        self, row: Record, ending: RunEnding, *, remember: bool
    ) -> tuple[Record | None, RunEnding]:
        """The ending with the task's webhook, or of a run whose proposed changes may still
        wait for a decision; None when the task is no longer this worker's."""
        tenant_id, task_id = row["tenant_id"], row["id"]
        async with tenant_transaction(self._app_pool, tenant_id) as conn:
            finished = await self._end(conn, ending, remember=remember)
            if finished is None and ending.status is TaskStatus.succeeded:
                # Under the task's lock, as its deciders take it: one decided meanwhile has
                # either committed, and is seen here, or settles the task itself once this
                # commits.
                waiting = await actions_service.open_for_task(
                    conn, tenant_id=tenant_id, task_id=task_id, lock_task=True
                )
                if waiting:
                    # The run is over; the task is not until its proposed changes are decided.
                    ending = replace(
                        ending,
                        status=TaskStatus.awaiting_approval,
                        result=(ending.result or "") + awaiting_note(waiting),
                    )
                finished = await self._end(conn, ending, remember=remember)
            if (
                finished is not None
                and finished["webhook_url"]
                and ending.status is not TaskStatus.awaiting_approval
            ):
                await tasks_service.enqueue_webhook(
                    conn, tenant_id=tenant_id, task=tasks_service.task_read(finished)
                )
        return finished, ending

    async def _end(self, conn: Connection, ending: RunEnding, *, remember: bool) -> Record | None:
        meter, usage = ending.meter, ending.meter.usage if ending.meter else None
        channel, notices = self._live.notices({ending.task_id: [live_event(ending.event)]})
        return await queries.end_run(
            conn,
            tenant_id=ending.tenant_id,
            worker_id=self.worker_id,
            status=ending.status.value,
            result=ending.result,
            error=ending.error,
            input_tokens=usage.input_tokens if usage else 0,
            output_tokens=usage.output_tokens if usage else 0,
            cost_usd=meter.cost_usd if meter else Decimal(0),
            billed_to=meter.billed_to.value if meter else None,
            remember=remember,
            usage=meter.ledger() if meter else metering.NO_LEDGER,
            last_event=ending.event,
            channel=channel,
            notices=notices,
        )


@dataclass(frozen=True)
class RunEnding:
    """What ``end_run`` stores: the outcome, and the run's last event, numbered ``seq``."""

    tenant_id: uuid.UUID
    task_id: uuid.UUID
    seq: int
    status: TaskStatus
    result: str | None
    error: dict[str, str] | None
    meter: metering.RunMeter | None

    @cached_property
    def event(self) -> Row:
        usage = self.meter.usage if self.meter else None
        data = {
            "text": self.result,
            "error": self.error,
            "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
            if usage
            else None,
        }
        return Row(
            tenant_id=self.tenant_id,
            task_id=self.task_id,
            seq=self.seq,
            type=f"task.{self.status.value}",
            ts=datetime.now(UTC),
            data={key: value for key, value in data.items() if value is not None},
        )


NOTE_HEADING = "\n\nChanges this run proposed:"


def awaiting_note(actions: list[Any]) -> str:
    """What the thread tells the user about the changes the task still waits for."""
    state = {"pending": "Waiting for your approval", "approved": "Approved, being carried out"}
    lines = [f"- {state.get(a.status, a.status)}: {a.summary} (action {a.id})" for a in actions]
    note = NOTE_HEADING + "\n" + "\n".join(lines)
    if any(a.status == "pending" for a in actions):
        note += (
            "\nNothing changes before you decide: approve or reject each waiting one in the "
            "dashboard (POST /v1/actions/{id}/approve or /reject)."
        )
    return note


def answer_of(result: str) -> str:
    """The crew's answer in a stored result, without the note on its waiting actions."""
    return result.partition(NOTE_HEADING)[0]
