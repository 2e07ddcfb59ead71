"""CrewAI's events, as the steps of the opshub task whose run emitted them.

The worker sets ``current_events`` before a kickoff; CrewAI hands events to handlers with a copy
of the emitter's context, so each step lands in its own task's sequence, however many crews run.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from typing import Any

from opshub.llm.usage import TokenUsage
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


def _llm_call(_source: Any, event: Any) -> None:
    if (events := current_events.get()) is not None:
        usage = TokenUsage.from_provider(event.usage)
        events.emit(
            EventType.llm_call,
            agent=_role(event.from_agent),
            model=event.model,
            usage={"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens},
        )


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
        events.emit(EventType.token, agent=_role(event.from_agent), text=event.chunk)


_installed = threading.Lock()
_done = False


def install() -> None:
    """Register the handlers with CrewAI's event bus once per process."""
    global _done
    with _installed:
        if _done:
            return
        from crewai.events import crewai_event_bus
        from crewai.events.types.agent_events import (
            AgentExecutionCompletedEvent,
            AgentExecutionStartedEvent,
        )
        from crewai.events.types.llm_events import LLMCallCompletedEvent, LLMStreamChunkEvent
        from crewai.events.types.tool_usage_events import (
            ToolUsageErrorEvent,
            ToolUsageFinishedEvent,
            ToolUsageStartedEvent,
        )

        for event_type, handler in (
            (AgentExecutionStartedEvent, _agent_started),
            (AgentExecutionCompletedEvent, _agent_finished),
            (LLMCallCompletedEvent, _llm_call),
            (ToolUsageStartedEvent, _tool_call),
            (ToolUsageFinishedEvent, _tool_result),
            (ToolUsageErrorEvent, _tool_error),
            (LLMStreamChunkEvent, _token),
        ):
            crewai_event_bus.on(event_type)(handler)
        _done = True
