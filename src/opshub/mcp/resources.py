"""MCP resources: a task's trace, every step of its run as the task's event stream has it."""

from __future__ import annotations

import uuid

import orjson
from mcp.server.fastmcp import Context, FastMCP

from opshub.actions import service as actions_service
from opshub.auth.models import Role
from opshub.errors import NotFoundError
from opshub.mcp.access import caller
from opshub.mcp.errors import enveloped
from opshub.tasks import service as tasks_service
from opshub.tasks.schemas import TaskEvent

TRACE_URI = "opshub://tasks/{task_id}/trace"


def register(server: FastMCP) -> None:
    @server.resource(
        TRACE_URI,
        name="task_trace",
        description="Every step of a task's run in order: agent steps, model and tool calls, "
        "proposed changes and the end, as GET /v1/tasks/{id}/events sends them.",
        mime_type="application/json",
    )
    @enveloped
    async def task_trace(task_id: str, ctx: Context) -> str:  # type: ignore[type-arg]
        who = caller(ctx)
        tenant_id = who.principal.tenant_id
        events: list[TaskEvent] = []
        async with who.transaction(Role.viewer) as conn:
            task = await actions_service.get_task_with_actions(
                conn, tenant_id=tenant_id, task_id=_task_id(task_id)
            )
            while page := await tasks_service.events_after(
                conn, tenant_id=tenant_id, task_id=task.id, after=events[-1].seq if events else 0
            ):
                events.extend(page)
        trace = {
            "task_id": str(task.id),
            "status": task.status,
            "events": [event.model_dump(mode="json", exclude_none=True) for event in events],
        }
        return orjson.dumps(trace).decode()


def _task_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise NotFoundError("task not found") from None
