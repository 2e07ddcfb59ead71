"""How a run ends (``opshub.runtime.run_outcome``): the outcome is written only by the worker that
still holds the task's lease. A worker whose lease ran out and was taken over (it was presumed
dead, but was only slow) must not complete the task a second time or over the new holder's run.
A failure the provider or the store may get over is tried again after a backoff, up to the
task's attempts; any other ends the task at once; a run whose changes wait for approval leaves
its task awaiting them.

The task is put in the running state by hand, under a lease far in the future: no worker of the
test session claims or requeues it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
import structlog.testing
from prometheus_client import REGISTRY
from sqlalchemy import make_url

from opshub.actions import service as actions_service
from opshub.actions.kinds import ActionKind
from opshub.config import Settings
from opshub.credentials.errors import CredentialStoreError
from opshub.credentials.models import Source
from opshub.credentials.resolver import CredentialResolver
from opshub.credentials.store import open_secret_store
from opshub.db.engine import DatabaseUrls, create_pool, tenant_transaction
from opshub.errors import DomainError, NotFoundError
from opshub.llm.errors import BudgetExceededError, ProviderUnavailableError
from opshub.llm.factory import LLMFactory
from opshub.llm.metering import RunMeter
from opshub.llm.usage import TokenUsage
from opshub.loops import stop_all
from opshub.runtime.live import LocalLiveEvents
from opshub.runtime.run_outcome import RunOutcomes, TaskCancelledError
from opshub.runtime.task_events import RunEvents, TaskEventWriter
from opshub.tasks.models import TaskStatus
from tests.conftest import TenantHandle

HOLDER = "worker-now-holding-the-lease"


@pytest.fixture
async def writer(owner_pool: asyncpg.Pool) -> AsyncIterator[TaskEventWriter]:
    events = TaskEventWriter(pool=owner_pool, live=LocalLiveEvents())
    task = asyncio.create_task(events.run())
    try:
        yield events
    finally:
        await stop_all([task])


def outcomes(
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    settings: Settings,
    worker_id: str,
    live: LocalLiveEvents | None = None,
) -> RunOutcomes:
    resolver = CredentialResolver(
        pool=app_pool, store=open_secret_store(settings), settings=settings
    )
    return RunOutcomes(
        app_pool=app_pool,
        owner_pool=owner_pool,
        live=live or LocalLiveEvents(),
        factory=LLMFactory(pool=app_pool, resolver=resolver, settings=settings),
        settings=settings,
        worker_id=worker_id,
    )


async def running_task(
    owner_pool: asyncpg.Pool,
    tenant: TenantHandle,
    *,
    attempt: int = 2,
    thread_id: uuid.UUID | None = None,
    webhook_url: str | None = None,
) -> asyncpg.Record:
    row = await owner_pool.fetchrow(
        "INSERT INTO tasks (tenant_id, crew, input, status, attempt, max_attempts, started_at,"
        " lease_owner, lease_expires_at, thread_id, webhook_url) VALUES ($1, 'assistant',"
        " 'Summarise last week', 'running', $2, 3, now(), $3, now() + interval '1 hour', $4, $5)"
        " RETURNING *",
        tenant.id,
        attempt,
        HOLDER,
        thread_id,
        webhook_url,
    )
    assert row is not None
    return row


@dataclass
class HeldRuns:
    """Tasks of one tenant put in the running state under ``HOLDER``'s lease, with their event
    streams, and the outcomes of a worker."""

    tenant: TenantHandle
    owner_pool: asyncpg.Pool
    app_pool: asyncpg.Pool
    settings: Settings
    writer: TaskEventWriter

    async def start(self, **task: Any) -> tuple[asyncpg.Record, RunEvents]:
        row = await running_task(self.owner_pool, self.tenant, **task)
        events = self.writer.open_run(tenant_id=self.tenant.id, task_id=row["id"], last_seq=0)
        return row, events

    def outcomes(
        self, worker_id: str = HOLDER, live: LocalLiveEvents | None = None, **settings: Any
    ) -> RunOutcomes:
        """The outcomes of ``worker_id`` (the lease holder unless named), ``settings`` changed,
        publishing to ``live`` (the watchers of this process) if given."""
        settings_now = self.settings.model_copy(update=settings)
        return outcomes(self.app_pool, self.owner_pool, settings_now, worker_id, live)


@pytest.fixture
def held(
    tenant_a: TenantHandle,
    owner_pool: asyncpg.Pool,
    app_pool: asyncpg.Pool,
    settings: Settings,
    writer: TaskEventWriter,
) -> HeldRuns:
    return HeldRuns(tenant_a, owner_pool, app_pool, settings, writer)


async def stored(owner_pool: asyncpg.Pool, task_id: uuid.UUID) -> tuple[asyncpg.Record, int, int]:
    """The task row, its stored events and its outbox events."""
    task = await owner_pool.fetchrow("SELECT * FROM tasks WHERE id = $1", task_id)
    events = await owner_pool.fetchval(
        "SELECT count(*) FROM task_events WHERE task_id = $1", task_id
    )
    outbox = await owner_pool.fetchval(
        "SELECT count(*) FROM outbox WHERE (data->>'task_id')::uuid = $1", task_id
    )
    assert task is not None
    return task, events, outbox


async def test_a_worker_that_lost_the_lease_cannot_complete_the_task(
    held: HeldRuns,
    owner_pool: asyncpg.Pool,
) -> None:
    row, events = await held.start()
    stale = held.outcomes("worker-presumed-dead")

    with structlog.testing.capture_logs() as logs:
        ended = await stale.complete(row, events, TaskStatus.succeeded, None, result="stale answer")

    assert ended is False
    # The operator reads which task's outcome was dropped, and why.
    assert [(e["log_level"], e["event"], e["task"]) for e in logs] == [
        ("warning", "task no longer held by this worker; outcome dropped", str(row["id"]))
    ]
    task, event_count, outbox_count = await stored(owner_pool, row["id"])
    assert task["status"] == "running"
    assert task["result"] is None and task["finished_at"] is None
    assert task["lease_owner"] == HOLDER
    assert (event_count, outbox_count) == (0, 0)  # no task.succeeded anywhere


async def test_the_lease_holder_completes_the_task(
    held: HeldRuns,
    owner_pool: asyncpg.Pool,
) -> None:
    """The control for the test above: the same call by the holder ends the task."""
    row, events = await held.start()
    holder = held.outcomes()

    await holder.complete(row, events, TaskStatus.succeeded, None, result="the answer")

    task, event_count, outbox_count = await stored(owner_pool, row["id"])
    assert task["status"] == "succeeded" and task["result"] == "the answer"
    assert task["lease_owner"] is None
    assert (event_count, outbox_count) == (1, 1)  # task.succeeded, stored and in the outbox
    # No model call was metered: nothing used, nothing billed, to nobody.
    assert (task["input_tokens"], task["output_tokens"], task["cost_usd"]) == (0, 0, 0)
    assert task["billed_to"] is None


async def task_events(owner_pool: asyncpg.Pool, task_id: uuid.UUID) -> list[tuple[str, Any]]:
    rows = await owner_pool.fetch(
        "SELECT type, data FROM task_events WHERE task_id = $1 ORDER BY seq", task_id
    )
    return [(r["type"], r["data"]) for r in rows]


async def outbox_types(owner_pool: asyncpg.Pool, task_id: uuid.UUID) -> list[str]:
    return [
        r["event_type"]
        for r in await owner_pool.fetch(
            "SELECT event_type FROM outbox WHERE (data->>'task_id')::uuid = $1 ORDER BY id",
            task_id,
        )
    ]


@pytest.mark.parametrize(
    ("attempt", "backoff", "delay"),
    [(1, 10.0, 10.0), (2, 10.0, 20.0), (2, 400.0, 300.0)],
    ids=["first-attempt", "doubled", "at-most-five-minutes"],
)
@pytest.mark.parametrize(
    "error",
    [ProviderUnavailableError("the provider is overloaded"), CredentialStoreError("Vault sealed")],
    ids=["provider", "credential-store"],
)
async def test_a_passing_failure_queues_the_task_again_after_a_doubling_backoff(
    held: HeldRuns,
    owner_pool: asyncpg.Pool,
    attempt: int,
    backoff: float,
    delay: float,
    error: DomainError,
) -> None:
    row, events = await held.start(attempt=attempt)
    holder = held.outcomes(task_retry_backoff_seconds=backoff)
    counted = {"crew": "assistant", "status": "retrying", "error": error.code}
    retries_before = REGISTRY.get_sample_value("opshub_tasks_total", counted) or 0.0

    await holder.fail(row, events, error, None)

    task = await owner_pool.fetchrow(
        "SELECT *, extract(epoch FROM run_after - now())::float AS wait FROM tasks WHERE id = $1",
        row["id"],
    )
    assert task is not None
    assert task["status"] == "queued" and task["finished_at"] is None
    assert task["lease_owner"] is None and task["lease_expires_at"] is None
    assert delay - 5 < task["wait"] <= delay  # the seconds since it was queued again
    body = {"code": error.code, "message": error.message}
    assert task["error"] == body
    assert await task_events(owner_pool, row["id"]) == [("task.retrying", {"error": body})]
    assert await outbox_types(owner_pool, row["id"]) == []  # not over yet
    # The operator's retry counter names the error (this process's registry, as scraped).
    assert REGISTRY.get_sample_value("opshub_tasks_total", counted) == retries_before + 1


async def test_an_unexpected_error_is_tried_again_as_an_internal_error_without_its_text(
    held: HeldRuns,
    owner_pool: asyncpg.Pool,
) -> None:
    row, events = await held.start()

    failure = RuntimeError("password=hunter2 in a stack frame")
    with structlog.testing.capture_logs() as logs:
        await held.outcomes().fail(row, events, failure, None)

    task, _, _ = await stored(owner_pool, row["id"])
    assert task["status"] == "queued"
    assert task["error"] == {
        "code": "internal_error",
        "message": "the run failed unexpectedly; retry it or contact support",
    }
    assert "hunter2" not in json.dumps(await task_events(owner_pool, row["id"]))
    # Its text is the operator's alone: in the log, with the task and the traceback.
    errors = [(e["event"], e["task"], e["exc_info"]) for e in logs if e["log_level"] == "error"]
    assert errors == [("crew run failed", str(row["id"]), failure)]


async def test_the_last_attempt_fails_the_task_with_its_error(
    held: HeldRuns,
    owner_pool: asyncpg.Pool,
) -> None:
    row, events = await held.start(attempt=3)
    error = ProviderUnavailableError("the provider is overloaded")
    counted = {"crew": "assistant", "status": "failed", "error": "provider_unavailable"}
    failed_before = REGISTRY.get_sample_value("opshub_tasks_total", counted) or 0.0

    await held.outcomes().fail(row, events, error, None)

    task, _, _ = await stored(owner_pool, row["id"])
    body = {"code": "provider_unavailable", "message": "the provider is overloaded"}
    assert task["status"] == "failed" and task["finished_at"] is not None
    assert task["error"] == body
    assert await task_events(owner_pool, row["id"]) == [("task.failed", {"error": body})]
    assert await outbox_types(owner_pool, row["id"]) == ["task.failed"]
    # The operator's count of failed runs names the error.
    assert REGISTRY.get_sample_value("opshub_tasks_total", counted) == failed_before + 1


async def test_an_error_no_retry_can_mend_fails_the_task_on_its_first_attempt(
    held: HeldRuns,
    owner_pool: asyncpg.Pool,
) -> None:
    row, events = await held.start(attempt=1)

    await held.outcomes().fail(row, events, NotFoundError("no such crew"), None)

    task, _, _ = await stored(owner_pool, row["id"])
    assert task["status"] == "failed"
    assert task["error"] == {"code": "not_found", "message": "no such crew"}


async def test_a_cancelled_run_ends_cancelled_without_an_error(
    held: HeldRuns,
    owner_pool: asyncpg.Pool,
) -> None:
    row, events = await held.start(attempt=1)

    await held.outcomes().fail(row, events, TaskCancelledError("cancelled by the user"), None)

    task, _, _ = await stored(owner_pool, row["id"])
    assert task["status"] == "cancelled" and task["error"] is None
    assert await task_events(owner_pool, row["id"]) == [("task.cancelled", {})]
    assert await outbox_types(owner_pool, row["id"]) == ["task.cancelled"]


async def test_a_finished_run_answers_in_its_thread_and_sends_its_webhook(
    held: HeldRuns,
    owner_pool: asyncpg.Pool,
) -> None:
    thread_id = await owner_pool.fetchval(
        "INSERT INTO threads (tenant_id) VALUES ($1) RETURNING id", held.tenant.id
    )
    hook = "https://hooks.example.com/opshub"
    row, events = await held.start(thread_id=thread_id, webhook_url=hook)

    ended = await held.outcomes().complete(
        row, events, TaskStatus.succeeded, None, result="the answer", remember=True
    )

    assert ended is True  # its memories are this worker's to write
    task, _, _ = await stored(owner_pool, row["id"])
    assert task["status"] == "succeeded" and task["memory_pending"]
    assert task["lease_owner"] == HOLDER  # kept for the write-back
    messages = await owner_pool.fetch(
        "SELECT role, content, task_id FROM thread_messages WHERE thread_id = $1", thread_id
    )
    assert [tuple(m) for m in messages] == [("agent", "the answer", row["id"])]
    [delivery] = await owner_pool.fetch(
        "SELECT url, body FROM webhook_deliveries WHERE task_id = $1", row["id"]
    )
    assert delivery["url"] == hook
    body = delivery["body"]
    assert body["event"] == "task.succeeded"
    assert body["task"]["result"] == "the answer"
    assert await task_events(owner_pool, row["id"]) == [("task.succeeded", {"text": "the answer"})]
    assert await outbox_types(owner_pool, row["id"]) == ["task.succeeded"]


# A crew may end with no text at all: its task then reads as the note alone.
@pytest.mark.parametrize("answer", ["Raised the budget.", ""], ids=["answered", "no-answer"])
async def test_a_run_whose_change_waits_for_approval_leaves_its_task_awaiting_it(
    held: HeldRuns,
    owner_pool: asyncpg.Pool,
    answer: str,
) -> None:
    hook = "https://hooks.example.com/opshub"
    row, events = await held.start(webhook_url=hook)
    async with tenant_transaction(held.app_pool, held.tenant.id) as conn:
        action = await actions_service.propose(
            conn,
            tenant_id=held.tenant.id,
            task_id=row["id"],
            tool="ads",
            kind=ActionKind.budget_change,
            payload={
                "channel": "meta_ads",
                "campaign_id": "120330000000000001",
                "daily_budget": "150",
                "previous_daily_budget": "50",
                "currency": "USD",
            },
            summary="Raise Brand to 150 USD a day",
        )

    live = LocalLiveEvents()
    async with live.watch(row["id"]) as watching:
        ended = await held.outcomes(live=live).complete(
            row, events, TaskStatus.succeeded, None, result=answer, remember=True
        )

    assert ended is True
    # Its watchers are told at once, in JSON as the stream sends it.
    [event] = json.loads(json.dumps(watching.get_nowait()))
    assert (event["seq"], event["type"]) == (1, "task.awaiting_approval")
    task, _, _ = await stored(owner_pool, row["id"])
    assert task["status"] == "awaiting_approval"
    waiting = f"- Waiting for your approval: Raise Brand to 150 USD a day (action {action.id})"
    assert task["result"].startswith(f"{answer}\n\nChanges this run proposed:")
    assert waiting in task["result"]
    [(kind, data)] = await task_events(owner_pool, row["id"])
    assert kind == "task.awaiting_approval"
    assert data == {"text": task["result"]}
    assert await outbox_types(owner_pool, row["id"]) == [
        "action.proposed",
        "task.awaiting_approval",
    ]
    webhooks = await owner_pool.fetchval(
        "SELECT count(*) FROM webhook_deliveries WHERE task_id = $1", row["id"]
    )
    assert webhooks == 0  # sent when the task ends, after the decision


class AuthenticationError(Exception):
    """What the OpenAI SDK raises for a refused key (matched by name and status, as the SDKs'
    own are)."""

    status_code = 401


def metered(row: asyncpg.Record, *calls: tuple[int, int]) -> RunMeter:
    """The run's meter after its model calls, on the tenant's own OpenAI key."""
    meter = RunMeter(
        tenant_id=row["tenant_id"],
        task_id=row["id"],
        provider="openai",
        billed_to=Source.byok,
        prices={},
    )
    for tokens_in, tokens_out in calls:
        meter.add("gpt-4.1-mini", TokenUsage(input_tokens=tokens_in, output_tokens=tokens_out))
    return meter


async def test_a_key_the_provider_refused_fails_the_task_at_once(
    held: HeldRuns,
    owner_pool: asyncpg.Pool,
) -> None:
    """A refusal is not retried: the tenant has to store a valid key first."""
    row, events = await held.start(attempt=1)
    refused = RuntimeError("the crew's model call failed")
    refused.__cause__ = AuthenticationError("Incorrect API key provided")

    await held.outcomes().fail(row, events, refused, metered(row, (40, 0)))

    task, _, _ = await stored(owner_pool, row["id"])
    assert task["status"] == "failed"
    assert task["error"] == {
        "code": "credential_invalid",
        "message": "openai refused the key; store a valid one",
    }
    assert task["input_tokens"] == 40  # the refused call's usage is still the run's


async def test_a_run_stopped_by_its_budget_fails_with_the_budget_as_its_reason(
    held: HeldRuns,
    owner_pool: asyncpg.Pool,
) -> None:
    """The crew sees the stop as any failed call; the task says why it was stopped."""
    row, events = await held.start(attempt=1)
    meter = metered(row, (500, 100))
    meter.stop(BudgetExceededError("the run reached this month's platform budget"))

    await held.outcomes().fail(
        row, events, RuntimeError("the model call was refused by the meter"), meter
    )

    task, _, _ = await stored(owner_pool, row["id"])
    assert task["status"] == "failed"
    assert task["error"] == {
        "code": "budget_exceeded",
        "message": "the run reached this month's platform budget",
    }


async def test_a_cancelled_run_keeps_the_usage_of_the_calls_it_made(
    held: HeldRuns,
    owner_pool: asyncpg.Pool,
) -> None:
    row, events = await held.start(attempt=1)
    meter = metered(row, (120, 30), (80, 10))
    meter.stop(TaskCancelledError("cancelled by the user"))

    await held.outcomes().fail(row, events, RuntimeError("stopped at the next model call"), meter)

    task, _, _ = await stored(owner_pool, row["id"])
    assert task["status"] == "cancelled"
    assert (task["input_tokens"], task["output_tokens"]) == (200, 40)
    assert task["billed_to"] == "byok"


async def test_a_metered_run_that_succeeds_keeps_its_usage_its_ledger_and_its_count(
    held: HeldRuns,
    owner_pool: asyncpg.Pool,
) -> None:
    """What the tenant is billed and shown for a finished run: the task's totals, one ledger row
    per model call, the final event's usage, and the operator's count of succeeded runs."""
    row, events = await held.start(attempt=1)
    meter = metered(row, (120, 30), (80, 10))
    counted = {"crew": "assistant", "status": "succeeded", "error": ""}
    succeeded_before = REGISTRY.get_sample_value("opshub_tasks_total", counted) or 0.0
    calls = {"crew": "assistant"}
    calls_before = REGISTRY.get_sample_value("opshub_run_model_calls_sum", calls) or 0.0

    await held.outcomes().complete(row, events, TaskStatus.succeeded, meter, result="the answer")

    task, _, _ = await stored(owner_pool, row["id"])
    assert task["status"] == "succeeded"
    assert (task["input_tokens"], task["output_tokens"], task["billed_to"]) == (200, 40, "byok")
    # gpt-4.1-mini at 0.40 / 1.60 USD per million tokens in / out.
    assert task["cost_usd"] == Decimal("0.000144")
    ledger = await owner_pool.fetch(
        "SELECT model, input_tokens, output_tokens, billed_to FROM usage_records"
        " WHERE task_id = $1 ORDER BY input_tokens DESC",
        row["id"],
    )
    assert [tuple(r) for r in ledger] == [
        ("gpt-4.1-mini", 120, 30, "byok"), ("gpt-4.1-mini", 80, 10, "byok"),
    ]  # fmt: skip
    assert await task_events(owner_pool, row["id"]) == [
        (
            "task.succeeded",
            {"text": "the answer", "usage": {"input_tokens": 200, "output_tokens": 40}},
        )
    ]
    assert REGISTRY.get_sample_value("opshub_tasks_total", counted) == succeeded_before + 1
    assert REGISTRY.get_sample_value("opshub_run_model_calls_sum", calls) == calls_before + 2


async def test_a_run_ends_in_one_statement_that_is_its_own_transaction(
    held: HeldRuns, owner_pool: asyncpg.Pool, urls: DatabaseUrls
) -> None:
    """Every tenant's live stream (``/v1/events``) waits behind a transaction that holds an id,
    and a worker's loop, slowed by its crews' threads, takes a while for each round trip: the
    ending writes its outcome, usage, thread answer, domain event and last event in one
    statement, outside any transaction block, so the id is held only while it runs."""
    thread_id = await owner_pool.fetchval(
        "INSERT INTO threads (tenant_id) VALUES ($1) RETURNING id", held.tenant.id
    )
    sent: dict[str, list[str]] = {"app": [], "owner": []}
    app = await create_pool(urls.app, size=1, transactions_only=True)
    owner = await create_pool(urls.owner, size=1, transactions_only=True)
    try:
        ending = outcomes(app, owner, held.settings, HOLDER)
        # The connection's first use looks up the statement's types (asyncpg's introspection).
        first, first_events = await held.start(attempt=1)
        await ending.complete(first, first_events, TaskStatus.succeeded, metered(first, (1, 1)))
        row, events = await held.start(attempt=1, thread_id=thread_id)
        meter = metered(row, (120, 30), (80, 10))
        meter.byok_run_fee_usd = Decimal("0.002")
        for name, pool in (("app", app), ("owner", owner)):
            async with pool.acquire() as conn:
                conn.add_query_logger(lambda logged, log=sent[name]: log.append(logged.query))
        await ending.complete(row, events, TaskStatus.succeeded, meter, result="Done.")
    finally:
        await app.close()
        await owner.close()

    assert sent["app"] == []
    [written] = sent["owner"]
    assert written.startswith("WITH finished AS (")
    task, events_stored, outbox_events = await stored(owner_pool, row["id"])
    assert task["status"] == "succeeded" and (events_stored, outbox_events) == (1, 1)
    ledger = await owner_pool.fetch(
        "SELECT kind, model, cost_usd FROM usage_records WHERE task_id = $1 ORDER BY cost_usd",
        row["id"],
    )
    assert [(r["kind"], r["model"]) for r in ledger] == [
        ("model_call", "gpt-4.1-mini"), ("model_call", "gpt-4.1-mini"),
        ("run_fee", "byok-run-fee"),
    ]  # fmt: skip
    assert ledger[-1]["cost_usd"] == Decimal("0.002")
    answer = await owner_pool.fetchval(
        "SELECT content FROM thread_messages WHERE thread_id = $1", thread_id
    )
    assert answer == "Done."


async def test_a_change_decided_while_the_run_ends_does_not_leave_the_task_waiting(
    held: HeldRuns,
    owner_pool: asyncpg.Pool,
) -> None:
    """The run's end and a person's decision take turns on the task's row: an end that comes
    while the decision is being committed waits for it, sees the change decided, and the task
    succeeds (read before the decision committed, it would wait for approval forever)."""
    row, events = await held.start()
    tenant_id = held.tenant.id
    async with tenant_transaction(held.app_pool, tenant_id) as conn:
        action = await actions_service.propose(
            conn,
            tenant_id=tenant_id,
            task_id=row["id"],
            tool="ads",
            kind=ActionKind.campaign_status,
            payload={
                "channel": "meta_ads",
                "campaign_id": "120330000000000001",
                "status": "PAUSED",
            },
            summary="Pause Brand",
        )

    async with tenant_transaction(held.app_pool, tenant_id) as deciding:
        await actions_service.reject(
            deciding, tenant_id=tenant_id, action_id=action.id, actor="user:test"
        )
        ending = asyncio.create_task(
            held.outcomes().complete(row, events, TaskStatus.succeeded, None, result="Paused.")
        )
        # Commit the decision only once the run's end waits on the task's row.
        deadline = asyncio.get_running_loop().time() + 30
        while not await owner_pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        ):
            assert not ending.done(), ending.result()
            assert asyncio.get_running_loop().time() < deadline, "the run's end never waited"
            await asyncio.sleep(0.02)
    await ending

    task, _, _ = await stored(owner_pool, row["id"])
    assert (task["status"], task["result"]) == ("succeeded", "Paused.")


async def test_a_run_ends_when_the_database_refuses_the_owner_a_new_connection(
    held: HeldRuns, owner_pool: asyncpg.Pool, urls: DatabaseUrls
) -> None:
    """PostgreSQL out of connections (``too many clients``) refuses the owner's pool a new one:
    the run ends in a tenant transaction, on a connection of the app's pool."""
    role = f"opshub_owner_{uuid.uuid4().hex[:8]}"
    await owner_pool.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 1")
    limited = await create_pool(
        make_url(urls.owner).set(username=role).render_as_string(False), size=2
    )
    taken = await limited.acquire()  # the role's one connection: the next is refused
    try:
        row, events = await held.start(attempt=1)
        ending = outcomes(held.app_pool, limited, held.settings, HOLDER)
        await ending.complete(row, events, TaskStatus.succeeded, None, result="Done.")
        task, events_stored, outbox_events = await stored(owner_pool, row["id"])
        assert task["status"] == "succeeded" and (events_stored, outbox_events) == (1, 1)
    finally:
        await limited.release(taken)
        limited.terminate()
        await owner_pool.execute(f"DROP ROLE {role}")
