"""CrewAI's events, as the steps of the opshub task whose run emitted them.

The worker sets ``current_events`` before a kickoff; CrewAI hands events to handlers with a copy
of the emitter's context, so each step lands in its own task's sequence, however many crews run.

A model call's event names its agent in ``agent_role``: CrewAI moves the agent there and clears
``from_agent`` when it builds the event. Its cost is priced as the run's meter prices it, and its
latency runs from the call's started event to its completed one (matched by ``call_id``).
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from opshub.llm import metering
from opshub.llm.crewai_setup import install_once
from opshub.llm.usage import TokenUsage, cost_usd
from opshub.runtime.task_events import RunEvents
from opshub.tasks.models import EventType

current_events: ContextVar[RunEvents | None] = ContextVar("opshub_current_events", default=None)
MAX_TEXT = 2_000


def _role(agent: Any) -> str | None:
    return getattr(agent, "role", None) if agent is not None else None


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + " …"


def _agent_started(_source: Any, event: Any) -> None:
    if (events := current_events.get()) is not None:
        events.emit(EventType.agent_step, agent=_role(event.agent), status="started")


def _agent_finished(_source: Any, event: Any) -> None:
    if (events := current_events.get()) is not None:
        events.emit(
            EventType.agent_step,
            agent=_role(event.agent),
            status="finished",
            text=_text(event.output),
        )


# CrewAI hands both events of a call to its handler pool in order, one model round trip apart.
_call_starts: dict[str, datetime] = {}
_call_starts_lock = threading.Lock()


def _llm_started(_source: Any, event: Any) -> None:
    if current_events.get() is not None:
        with _call_starts_lock:
            _call_starts[event.call_id] = event.timestamp


def _llm_ended(event: Any) -> int | None:
    """Milliseconds since the call started, and forget the call (completed or failed)."""
    with _call_starts_lock:
        started = _call_starts.pop(event.call_id, None)
    if started is None:
        return None
    ended: datetime = event.timestamp
    return max(round((ended - started).total_seconds() * 1000), 0)


def _llm_call(_source: Any, event: Any) -> None:
    latency_ms = _llm_ended(event)
    if (events := current_events.get()) is not None:
        usage = TokenUsage.from_provider(event.usage)
        model = event.model or "unknown"
        meter = metering.current_run.get()
        cost = cost_usd(model, usage, meter.prices) if meter is not None else None
        events.emit(
            EventType.llm_call,
            agent=event.agent_role,
            model=event.model,
            usage={"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens},
            # A decimal string: the ledger's precision, never a float.
            cost_usd=str(cost) if cost is not None else None,
            latency_ms=latency_ms,
        )


def _llm_failed(_source: Any, event: Any) -> None:
    _llm_ended(event)


def _tool_call(_source: Any, event: Any) -> None:
    if (events := current_events.get()) is not None:
        events.emit(
            EventType.tool_call, agent=event.agent_role, tool=event.tool_name, args=event.tool_args
        )


def _tool_result(_source: Any, event: Any) -> None:
    if (events := current_events.get()) is not None:
        events.emit(
            EventType.tool_result,
            agent=event.agent_role,
            tool=event.tool_name,
            text=_text(event.output),
        )


def _tool_error(_source: Any, event: Any) -> None:
    if (events := current_events.get()) is not None:
        events.emit(
            EventType.tool_result,
            agent=event.agent_role,
            tool=event.tool_name,
            error=_text(event.error),
        )


def _token(_source: Any, event: Any) -> None:
    if (events := current_events.get()) is not None and event.chunk and event.tool_call is None:
        events.emit(EventType.token, agent=event.agent_role, text=event.chunk)


def install() -> None:
    """Register the handlers with CrewAI's event bus once per process."""
    install_once("crewai_bridge", _register)


def _register() -> None:
    from crewai.events import crewai_event_bus
    from crewai.events.types.agent_events import (
        AgentExecutionCompletedEvent,
        AgentExecutionStartedEvent,
    )
    from crewai.events.types.llm_events import (
        LLMCallCompletedEvent,
        LLMCallFailedEvent,
        LLMCallStartedEvent,
        LLMStreamChunkEvent,
    )
    from crewai.events.types.tool_usage_events import (
        ToolUsageErrorEvent,
        ToolUsageFinishedEvent,
        ToolUsageStartedEvent,
    )

    for event_type, handler in (
        (AgentExecutionStartedEvent, _agent_started),
        (AgentExecutionCompletedEvent, _agent_finished),
        (LLMCallStartedEvent, _llm_started),
        (LLMCallCompletedEvent, _llm_call),
        (LLMCallFailedEvent, _llm_failed),
        (ToolUsageStartedEvent, _tool_call),
        (ToolUsageFinishedEvent, _tool_result),
        (ToolUsageErrorEvent, _tool_error),
        (LLMStreamChunkEvent, _token),
    ):
        crewai_event_bus.on(event_type)(handler)
