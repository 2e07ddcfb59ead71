"""A run's memories are written after its task has ended, so nobody waits for them.

What a run leaves to remember (its outcome, and the facts one more call to the tenant's model
picks out) used to be written before the task ended: every answer waited for that extra model
call, seconds with a real provider. Now the task ends first, marked ``memory_pending`` and still
under its worker's lease, which the worker's heartbeat renews while it writes. The mark is cleared
in the transaction that stores the memories and the extraction call's usage, so they are stored
once. A worker that dies in between stops renewing; another worker's heartbeat finds the expired
lease and writes them back itself (``claim_lost``). A failure to store them loses the memories,
never the usage: the call was made, and it is paid.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import asyncpg
import structlog

from opshub.db.engine import tenant_transaction
from opshub.db.sql import Record
from opshub.llm import metering
from opshub.llm.usage import TokenUsage
from opshub.memory import service as memory_service
from opshub.memory.run_memory import RunMemories, TenantMemory, memories_of_run
from opshub.memory.schemas import MemorySaved
from opshub.runtime import queries

log = structlog.get_logger(__name__)


class _TakenOverError(Exception):
    """The task's write-back is another worker's now: what this one stored is rolled back."""


class MemoryWriteBack:
    def __init__(self, *, owner_pool: asyncpg.Pool, worker_id: str, lease_seconds: float) -> None:
        self._owner_pool = owner_pool
        self._worker_id = worker_id
        self._lease_seconds = lease_seconds

    async def write(
        self,
        row: Record,
        *,
        crew: str,
        answer: str,
        memory: TenantMemory,
        llm: Any | None,
        meter: metering.RunMeter | None,
    ) -> list[MemorySaved]:
        """Store what the run (the task ``row``) leaves to remember. ``llm``: the tenant's
        CrewAI model for the extraction call, metered by ``meter``; None: the outcome only."""
        token = metering.current_run.set(meter)
        try:
            memories = await memories_of_run(
                memory,
                task_id=row["id"],
                crew=crew,
                thread_id=row["thread_id"],
                request=row["input"],
                answer=answer,
                llm=llm,
            )
        finally:
            metering.current_run.reset(token)
        try:
            saved = await self._store(row, memory, memories, meter)
        except Exception as exc:
            log.warning("memory write-back failed", task=str(row["id"]), error=type(exc).__name__)
            saved = await self._store(row, memory, RunMemories([], []), meter)
        if saved:
            log.info("memories saved", task=str(row["id"]), outcomes=[s.outcome for s in saved])
        return saved

    async def _store(
        self,
        row: Record,
        memory: TenantMemory,
        memories: RunMemories,
        meter: metering.RunMeter | None,
    ) -> list[MemorySaved]:
        tenant_id, task_id = row["tenant_id"], row["id"]
        usage = meter.usage if meter else TokenUsage()
        embedded = await self._embed(memory, tenant_id=tenant_id, memories=memories)
        try:
            async with tenant_transaction(memory.app_pool, tenant_id, custom_plans=True) as conn:
                # Waited for before the first write, and the task's mark cleared after the
                # memories: a transaction that has written holds back every tenant's
                # /v1/events until it ends (rows show once no older one is open), and another
                # run's write-back of this tenant may hold the lock a while.
                await memory_service.lock_tenant_writes(conn, tenant_id=tenant_id)
                saved = await memory_service.remember_many(
                    conn,
                    tenant_id=tenant_id,
                    embedders=memory.embedders,
                    items=memories.items,
                    source_task_id=task_id,
                    index_builder=memory.index_builder,
                    embedded=embedded,
                    index_texts=memories.index_texts,
                    locked=True,
                )
                still_ours = await queries.memory_written(
                    conn,
                    tenant_id=tenant_id,
                    task_id=task_id,
                    worker_id=self._worker_id,
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    cost_usd=meter.cost_usd if meter else Decimal(0),
                    usage=meter.ledger() if meter else metering.NO_LEDGER,
                )
                if not still_ours:
                    raise _TakenOverError
        except _TakenOverError:  # presumed dead, and another worker has written them
            log.warning("memory write-back taken over elsewhere", task=str(task_id))
            return []
        return saved

    @staticmethod
    async def _embed(
        memory: TenantMemory, *, tenant_id: uuid.UUID, memories: RunMemories
    ) -> memory_service.ItemVectors | None:
        """The memories' vectors, made before the storing transaction opens: an open writing
        transaction holds back every tenant's ``/v1/events`` (rows show once no older
        transaction is open), and an embedding is a model call or ~100 ms of CPU a batch.
        None when there is nothing to embed."""
        if not memories.items or memories.embedding_model is None:
            return None
        return await memory_service.embed_items(
            memory.embedders,
            model=memories.embedding_model,
            tenant_id=tenant_id,
            items=memories.items,
            index_texts=memories.index_texts,
        )

    async def claim_lost(self, *, limit: int) -> list[Record]:
        """Ended tasks whose write-back lost its worker, leased to this one now."""
        async with self._owner_pool.acquire() as conn:
            return await queries.claim_lost_write_backs(
                conn, worker_id=self._worker_id, lease_seconds=self._lease_seconds, limit=limit
            )
