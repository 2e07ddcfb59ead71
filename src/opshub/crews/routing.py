"""Chat routing: which crew takes a message that names none, or a clarifying question back.

A LangGraph graph of one node asks the tenant's own model for a ``RouteDecision`` through
crewAI's structured output (the decision as the client's response format: OpenAI's
``json_schema``, Anthropic's ``output_format``). A reply that does not validate is asked for once
more; a second bad one becomes a clarifying question. The chat never fails over a reply.

Per chat thread the graph is checkpointed in PostgreSQL (``opshub.db.checkpoints``) under the
thread id ``"<tenant_id>:<thread_id>"``: a routing conversation outlives the worker, so the
question asked before a restart is in view when the answer arrives after it. The graph state
holds turns and decisions only. The model, and with it the tenant's key, travels in the run's
context, which LangGraph never checkpoints.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypedDict, get_args

import psycopg
import structlog
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, Field, ValidationError, model_validator

from opshub.crews.registry import CrewInfo
from opshub.db import checkpoints
from opshub.llm import metering

if TYPE_CHECKING:
    from crewai import LLM
    from crewai.utilities.types import LLMMessage
    from langchain_core.runnables import RunnableConfig

log = structlog.get_logger(__name__)

CrewName = Literal["marketing", "analytics", "ecommerce", "operations", "assistant"]
MAX_TURNS = 20  # of history kept per thread (a turn is a message or a decision)
MAX_TURN_CHARS = 4000  # of a message: enough to tell which crew it is for


class RouteDecision(BaseModel):
    crew: CrewName | None = Field(
        description="The crew that should take the message; null to ask a question first."
    )
    question: str | None = Field(
        description="When crew is null: one short question to the user that settles the choice."
    )
    reason: str = Field(description="One short sentence: why this crew, or why the question.")

    @model_validator(mode="after")
    def _crew_or_question(self) -> RouteDecision:
        if self.crew is not None:
            self.question = None
        elif not (self.question or "").strip():
            raise ValueError("name a crew or ask a question")
        return self


class Turn(TypedDict):
    role: Literal["user", "router"]
    content: str  # the user's message, or the router's decision as JSON


def _recent(left: list[Turn], right: list[Turn]) -> list[Turn]:
    return (left + right)[-MAX_TURNS:]


class RoutingState(TypedDict, total=False):
    message: str  # the message being routed
    turns: Annotated[list[Turn], _recent]  # the thread's routing conversation so far
    decision: dict[str, Any]  # the last RouteDecision


@dataclass(frozen=True)
class _Run:
    """What one routing run needs besides its state; never checkpointed."""

    llm: LLM
    crews: Mapping[str, CrewInfo]


class InvalidReplyError(Exception):
    """The model answered, but not with a usable decision."""


class ChatRouter:
    """Routes messages for every tenant of a worker process; ``start()`` before use."""

    def __init__(
        self, *, database_url: str, crews: Mapping[str, CrewInfo], pool_size: int = 2
    ) -> None:
        unknown = sorted(set(crews) - set(get_args(CrewName)))
        if not crews or unknown:
            raise ValueError(f"crews the router cannot name: {unknown or 'none given'}")
        self._conninfo = checkpoints.conninfo(database_url)
        self._crews = dict(crews)
        self._pool_size = pool_size
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[DictRow]] | None = None
        self._saver: AsyncPostgresSaver | None = None
        self._graph: CompiledStateGraph[RoutingState, _Run, RoutingState, RoutingState] | None
        self._graph = None
        # A task outside a thread has no next turn: its routing is kept nowhere.
        self._oneshot = _build_graph().compile()

    async def start(self) -> None:
        pool: AsyncConnectionPool[psycopg.AsyncConnection[DictRow]] = AsyncConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=self._pool_size,
            open=False,
            kwargs={**checkpoints.CONNECTION_KWARGS, "row_factory": dict_row},
            check=AsyncConnectionPool.check_connection,  # survives a database restart
            name="opshub-routing",
        )
        await pool.open(wait=True, timeout=30)
        self._pool, self._saver = pool, AsyncPostgresSaver(pool)
        self._graph = _build_graph().compile(checkpointer=self._saver)

    async def stop(self) -> None:
        if self._pool is not None:
            await self._pool.close()
        self._pool = self._saver = self._graph = None

    async def route(
        self, *, tenant_id: uuid.UUID, thread_id: uuid.UUID | None, message: str, llm: LLM
    ) -> RouteDecision:
        """The crew for ``message``, or a question to ask; with the thread's earlier turns.

        Errors of the model call itself (a bad key, a cancelled run) are raised as they are.
        """
        try:
            return await self._route(tenant_id, thread_id, message, llm)
        except Exception:
            log.exception("routing failed", tenant_id=str(tenant_id))
            raise

    async def _route(
        self, tenant_id: uuid.UUID, thread_id: uuid.UUID | None, message: str, llm: LLM
    ) -> RouteDecision:
        run = _Run(llm=for_routing(llm), crews=self._crews)
        update: RoutingState = {"message": message}
        if thread_id is None:
            state = await self._oneshot.ainvoke(update, context=run)
        else:
            if self._graph is None or self._saver is None:
                raise RuntimeError("ChatRouter.start() was not called")
            key = thread_key(tenant_id, thread_id)
            config: RunnableConfig = {"configurable": {"thread_id": key}}
            # "exit": one checkpoint per routed message, written before ainvoke returns.
            state = await self._graph.ainvoke(update, config, context=run, durability="exit")
            await self._prune(self._saver, key)
        return RouteDecision.model_validate(state["decision"])

    async def forget(self, *, tenant_id: uuid.UUID, thread_id: uuid.UUID) -> None:
        """Drop a thread's routing conversation (its thread is gone)."""
        if self._saver is None:
            raise RuntimeError("ChatRouter.start() was not called")
        await self._saver.adelete_thread(thread_key(tenant_id, thread_id))

    @staticmethod
    async def _prune(saver: AsyncPostgresSaver, key: str) -> None:
        # Each checkpoint stores the whole (bounded) history: older ones are only weight.
        try:
            await saver.aprune([key], strategy="keep_latest")
        except psycopg.Error as exc:  # a concurrent prune of the thread; the next one catches up
            log.warning("routing checkpoints not pruned", error=type(exc).__name__)


def thread_key(tenant_id: uuid.UUID, thread_id: uuid.UUID) -> str:
    """The checkpoint thread id. The tenant id in it is what keeps tenants apart: the
    checkpoint tables are platform tables, outside RLS."""
    return f"{tenant_id}:{thread_id}"


def _build_graph() -> StateGraph[RoutingState, _Run, RoutingState, RoutingState]:
    graph = StateGraph(RoutingState, context_schema=_Run)
    graph.add_node("decide", _decide)
    graph.add_edge(START, "decide")
    graph.add_edge("decide", END)
    return graph


async def _decide(state: RoutingState, runtime: Runtime[_Run]) -> RoutingState:
    message = state["message"][:MAX_TURN_CHARS]
    history = state.get("turns", [])
    decision = await decide(runtime.context.llm, runtime.context.crews, history, message)
    return {
        "turns": [
            Turn(role="user", content=message),
            Turn(role="router", content=decision.model_dump_json()),
        ],
        "decision": decision.model_dump(),
    }


async def decide(
    llm: LLM, crews: Mapping[str, CrewInfo], history: list[Turn], message: str
) -> RouteDecision:
    """Ask the model; one more try on an unusable reply, then a clarifying question."""
    messages = prompt(crews, history, message)
    for attempt in (1, 2):
        try:
            # A provider that parses the reply itself (Anthropic) raises ValidationError here.
            reply = await asyncio.to_thread(metering.call, llm, messages)
            return _read(reply, crews)
        except (ValidationError, InvalidReplyError) as exc:
            problem = _summary(exc)
            log.warning("routing reply unusable", attempt=attempt, problem=problem, exc_info=True)
            retry = f"That reply was not usable ({problem}). Answer again with the JSON only."
            messages = [*messages, {"role": "user", "content": retry}]
    names = _names(crews)
    return RouteDecision(
        crew=None,
        question=f"Which of these should take it: {names}? A sentence more about what you "
        "need helps me pick.",
        reason="the routing model's reply could not be read",
    )


def for_routing(llm: LLM) -> LLM:
    """The tenant's client, asking for a ``RouteDecision`` and never streaming.

    A crew's kickoff turns streaming on in the cached client it ran on, and a streamed structured
    reply that doesn't parse raises inside crewAI before the call's usage is reported. With the
    format on the client instead, every reply comes back (parsed, or as its text) and every call
    is metered. The copy shares the client's SDK connections.
    """
    return llm.model_copy(update={"stream": False, "response_format": RouteDecision})


def prompt(crews: Mapping[str, CrewInfo], history: list[Turn], message: str) -> list[LLMMessage]:
    """The system prompt (the crews, the answer's format), the thread's turns, the message."""
    lines = []
    for info in crews.values():
        roles = ", ".join(agent.role for agent in info.agents)
        lines.append(f"- {info.name}: {info.description}" + (f" Agents: {roles}." if roles else ""))
    names = " | ".join(f'"{name}"' for name in crews)
    system = (
        "You route requests to the crew of AI agents that should do the work. Decide which "
        "crew takes the user's latest message, reading it in the light of the conversation "
        "so far.\n\nThe crews:\n" + "\n".join(lines) + "\n\nAnswer with one JSON object and "
        f'nothing else: {{"crew": {names} | null, "question": string | null, "reason": '
        "string}. Name a crew when the message clearly belongs to it. When it could belong to "
        "more than one crew, or you cannot tell what is asked, set crew to null and ask the "
        "one short question whose answer settles it. reason: one short sentence."
    )
    turns: list[LLMMessage] = [
        {"role": "user" if turn["role"] == "user" else "assistant", "content": turn["content"]}
        for turn in history
    ]
    return [{"role": "system", "content": system}, *turns, {"role": "user", "content": message}]


def _read(reply: object, crews: Mapping[str, CrewInfo]) -> RouteDecision:
    if isinstance(reply, RouteDecision):
        decision = reply
    elif isinstance(reply, BaseModel):
        decision = RouteDecision.model_validate(reply.model_dump())
    elif isinstance(reply, str):  # a provider without structured output answered in text
        decision = RouteDecision.model_validate_json(_FENCE.sub("", reply.strip()))
    else:
        raise InvalidReplyError(f"a {type(reply).__name__} came back, not a decision")
    if decision.crew is not None and decision.crew not in crews:
        raise InvalidReplyError(f"crew must be one of {_names(crews)}")
    return decision


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


def _summary(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        errors = exc.errors(include_url=False, include_input=False)
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'reply'}: {e['msg']}" for e in errors)
    return str(exc)


def _names(crews: Mapping[str, CrewInfo]) -> str:
    names = list(crews)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
