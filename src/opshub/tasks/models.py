"""A task's lifecycle and the steps of a run that clients see as events."""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    queued = "queued"
    running = "running"
    awaiting_approval = "awaiting_approval"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset({TaskStatus.succeeded, TaskStatus.failed, TaskStatus.cancelled})


class EventType(StrEnum):
    task_started = "task.started"
    task_routed = "task.routed"
    agent_step = "agent.step"
    llm_call = "llm.call"
    tool_call = "tool.call"
    tool_result = "tool.result"
    action_proposed = "action.proposed"
    token = "token"  # noqa: S105 - a streamed text token, not a credential
    task_awaiting_approval = "task.awaiting_approval"
    task_succeeded = "task.succeeded"
    task_failed = "task.failed"
    task_cancelled = "task.cancelled"


TERMINAL_EVENTS = frozenset(
    {EventType.task_succeeded, EventType.task_failed, EventType.task_cancelled}
)
