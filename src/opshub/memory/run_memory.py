"""Memory around a crew run: what the crew is told before it starts, what is kept after it ends.

Before: the memories most relevant to the request, from the tenant, the crew and the thread,
within a token budget. After: the outcome, and the facts worth keeping, picked by one call to the
tenant's model (a tenant can switch that call off); ``opshub.runtime.memory_write_back`` stores
them once the task has ended.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
import structlog
from pydantic import ValidationError

from opshub.db.engine import tenant_transaction
from opshub.llm import metering
from opshub.memory import service
from opshub.memory.embedders import Embedders
from opshub.memory.indexes import IndexBuilder
from opshub.memory.models import TENANT_SCOPE, MemoryKind, Scope, ScopeKind
from opshub.memory.recalls import RecallTally
from opshub.memory.schemas import MemoryCreate, MemoryHit, MemorySaved, MemorySettings

log = structlog.get_logger(__name__)

CHARS_PER_TOKEN = 4
MIN_RUN_SIMILARITY = 0.3
MAX_EXTRACTED = 5

EXTRACTION_PROMPT = """You keep the long-term memory of a marketing and e-commerce business.
From the exchange below, list at most {limit} durable facts worth remembering for future work:
preferences, decisions, figures, names and relationships. Skip small talk, anything only true
today, and anything already obvious from the request. Answer with JSON only:
{{"facts": [{{"content": "<one self-contained sentence>",
             "kind": "fact" | "preference" | "insight",
             "subject": "<short key naming what it is about, e.g. acme.ad_budget>",
             "importance": <0 to 1>}}]}}
An empty list is a good answer when nothing is worth keeping.

Request: {request}

Answer: {answer}"""


@dataclass(frozen=True)
class TenantMemory:
    """The memory one run (and its tools) reads and writes, bound to its tenant."""

    app_pool: asyncpg.Pool
    tenant_id: uuid.UUID
    embedders: Embedders
    index_builder: IndexBuilder | None = None
    ef_search: int = 100
    extraction_default: bool = True
    recalls: RecallTally | None = None
    """Where the run's recalls are counted, written later in a batch; None: by each search."""

    async def search(
        self,
        query: str,
        *,
        limit: int = 8,
        where: service.MemoryFilter | None = None,
        min_similarity: float = 0.0,
    ) -> list[MemoryHit]:
        async with tenant_transaction(self.app_pool, self.tenant_id, custom_plans=True) as conn:
            hits = await service.search(
                conn,
                tenant_id=self.tenant_id,
                embedders=self.embedders,
                query=query,
                limit=limit,
                where=where,
                min_similarity=min_similarity,
                ef_search=self.ef_search,
                touch=self.recalls is None,
            )
        if self.recalls is not None:
            self.recalls.add(tenant_id=self.tenant_id, memory_ids=(hit.id for hit in hits))
        return hits

    async def remember(
        self, items: list[MemoryCreate], *, source_task_id: uuid.UUID | None = None
    ) -> list[MemorySaved]:
        async with tenant_transaction(self.app_pool, self.tenant_id, custom_plans=True) as conn:
            return await service.remember_many(
                conn,
                tenant_id=self.tenant_id,
                embedders=self.embedders,
                items=items,
                source_task_id=source_task_id,
                index_builder=self.index_builder,
            )

    async def settings(self) -> MemorySettings:
        async with tenant_transaction(self.app_pool, self.tenant_id) as conn:
            return await service.get_settings(
                conn, tenant_id=self.tenant_id, extraction_default=self.extraction_default
            )


def run_scopes(crew: str, thread_id: uuid.UUID | None) -> list[Scope]:
    scopes = [TENANT_SCOPE, Scope(ScopeKind.crew, crew)]
    if thread_id is not None:
        scopes.append(Scope(ScopeKind.thread, str(thread_id)))
    return scopes


async def recall_for_run(
    memory: TenantMemory, *, request: str, scopes: list[Scope], token_budget: int
) -> str:
    """The crew's memory section: best first, cut at the token budget; empty if nothing fits."""
    if token_budget <= 0:
        return ""
    hits = await memory.search(
        request,
        limit=20,
        where=service.MemoryFilter(scopes=scopes),
        min_similarity=MIN_RUN_SIMILARITY,
    )
    lines: list[str] = []
    used = 0
    for hit in hits:
        line = f"- ({hit.kind.value}) {hit.content}"
        cost = len(line) // CHARS_PER_TOKEN + 1
        if used + cost > token_budget:
            break
        lines.append(line)
        used += cost
    if not lines:
        return ""
    return "What you remember about this business (may be out of date):\n" + "\n".join(lines)


def _facts(reply: str) -> list[MemoryCreate]:
    """The model's JSON, forgiving of code fences and prose around it; bad items are skipped."""
    match = re.search(r"\{.*\}", reply, re.DOTALL)
    if match is None:
        return []
    try:
        facts = orjson.loads(match.group(0)).get("facts", [])
    except (orjson.JSONDecodeError, AttributeError):
        return []
    items = []
    for fact in facts[:MAX_EXTRACTED] if isinstance(facts, list) else []:
        try:
            items.append(
                MemoryCreate(
                    content=fact["content"],
                    kind=fact.get("kind", "fact"),
                    subject=fact.get("subject") or None,
                    importance=fact.get("importance", 0.5),
                )
            )
        except (ValidationError, KeyError, TypeError):
            continue
    return items


@dataclass(frozen=True)
class RunMemories:
    items: list[MemoryCreate]
    index_texts: list[str]
    """What each item is found by: the outcome by the request that led to it (the text the
    recall embedded before the run, so a run embeds it once), a fact by its own words."""
    embedding_model: str | None = None
    """The tenant's model when they were picked, to embed them with before the storing
    transaction (which makes them again should the tenant have moved to another since)."""


async def memories_of_run(
    memory: TenantMemory,
    *,
    task_id: uuid.UUID,
    crew: str,
    thread_id: uuid.UUID | None,
    request: str,
    answer: str,
    llm: Any | None,
) -> RunMemories:
    """What a finished run leaves to remember: its outcome, and the facts the tenant's model
    picks out (tenant scope) when the tenant has extraction on and there is a model (``llm``).

    The outcome of a chat turn stays with its thread: another conversation gets the durable
    facts, not the words of this one.
    """
    outcome_scope = f"thread:{thread_id}" if thread_id else f"crew:{crew}"
    items = [
        MemoryCreate(
            content=f"Request: {request[:600]}\nOutcome: {answer[:1200]}",
            scope=outcome_scope,
            kind=MemoryKind.outcome,
            importance=0.3,
            metadata={"task_id": str(task_id)},
        )
    ]
    settings = await memory.settings()
    if llm is not None and settings.extraction:
        for fact in await _extract(llm, request=request, answer=answer):
            fact.metadata["task_id"] = str(task_id)
            items.append(fact)
    index_texts = [request] + [fact.content for fact in items[1:]]
    return RunMemories(items, index_texts, settings.embedding_model)


async def _extract(llm: Any, *, request: str, answer: str) -> list[MemoryCreate]:
    """The facts the tenant's model picks out; none when the call fails (the outcome stays)."""
    prompt = EXTRACTION_PROMPT.format(
        limit=MAX_EXTRACTED, request=request[:4000], answer=answer[:6000]
    )
    try:
        # The tenant's CrewAI LLM, in a thread like every model call of a run, and metered.
        reply = await asyncio.to_thread(metering.call, llm, [{"role": "user", "content": prompt}])
    except Exception as exc:
        log.warning("memory extraction call failed", error=type(exc).__name__)
        return []
    return _facts(str(reply))
