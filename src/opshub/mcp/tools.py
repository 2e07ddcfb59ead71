"""The MCP tools: each calls the service its REST route calls, after the same role check."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from mcp.server.fastmcp import Context, FastMCP
from mcp.types import ToolAnnotations
from pydantic import Field

from opshub.actions import service as actions_service
from opshub.actions.models import ActionStatus
from opshub.actions.schemas import ActionPage, ActionRead
from opshub.auth.models import Role
from opshub.crews import service as crews_service
from opshub.crews.schemas import CrewRead
from opshub.mcp.access import caller
from opshub.mcp.errors import validated
from opshub.mcp.follow import describe, follow
from opshub.memory import service as memory_service
from opshub.memory.models import MemoryKind, Scope
from opshub.memory.schemas import MemoryCreate, MemoryPage, MemorySaved
from opshub.runtime.live import publish_stored
from opshub.tasks import service as tasks_service
from opshub.tasks.schemas import TaskCreate, TaskEvent, TaskRead

READ_ONLY = ToolAnnotations(readOnlyHint=True, openWorldHint=False)
MAX_WAIT_SECONDS = 600

TaskId = Annotated[uuid.UUID, Field(description="The task's id, as run_crew returned it.")]


def register(server: FastMCP) -> None:
    @server.tool(annotations=READ_ONLY)
    async def list_crews(ctx: Context) -> list[CrewRead]:  # type: ignore[type-arg]
        """The hub's crews: what each can do, its agents and their tools, and its model."""
        who = caller(ctx)
        async with who.transaction(Role.viewer) as conn:
            return await crews_service.list_crews(conn, tenant_id=who.principal.tenant_id)

    @server.tool()
    async def run_crew(
        ctx: Context,  # type: ignore[type-arg]
        input: Annotated[str, Field(description="The work, in plain language.")],
        crew: Annotated[
            str | None, Field(description="A crew from list_crews; none: routed by the input.")
        ] = None,
        inputs: Annotated[
            dict[str, object] | None, Field(description="Structured inputs for the crew.")
        ] = None,
        idempotency_key: Annotated[
            str | None, Field(description="The same key within 24 h returns the same task.")
        ] = None,
        wait_seconds: Annotated[
            int,
            Field(
                ge=0,
                le=MAX_WAIT_SECONDS,
                description="How long to wait for the run to end (or to wait for an approval); "
                "0 returns at once. A task still running is returned as it is: poll get_task.",
            ),
        ] = 120,
    ) -> TaskRead:
        """Run a crew on a task, reporting each step as progress; returns the task."""
        who = caller(ctx)
        tenant_id = who.principal.tenant_id
        body = validated(
            TaskCreate,
            crew=crew,
            input=input,
            inputs=inputs or {},
            idempotency_key=idempotency_key,
        )
        async with who.transaction(Role.member) as conn:
            task, _ = await tasks_service.submit_task(conn, tenant_id=tenant_id, body=body)
        if wait_seconds:

            async def report(event: TaskEvent) -> None:
                await ctx.report_progress(progress=event.seq, message=describe(event))

            await follow(who, task.id, report=report, within=wait_seconds)
            async with who.transaction(Role.viewer) as conn:
                task = await actions_service.get_task_with_actions(
                    conn, tenant_id=tenant_id, task_id=task.id
                )
        return task

    @server.tool(annotations=READ_ONLY)
    async def get_task(ctx: Context, task_id: TaskId) -> TaskRead:  # type: ignore[type-arg]
        """A task: its status, its result or error, usage, and the changes it waits on."""
        who = caller(ctx)
        async with who.transaction(Role.viewer) as conn:
            return await actions_service.get_task_with_actions(
                conn, tenant_id=who.principal.tenant_id, task_id=task_id
            )

    @server.tool(annotations=ToolAnnotations(destructiveHint=True, idempotentHint=True))
    async def cancel_task(ctx: Context, task_id: TaskId) -> TaskRead:  # type: ignore[type-arg]
        """Cancel a task: a queued one at once, a running one at its next model call."""
        who = caller(ctx)
        async with who.transaction(Role.member) as conn:
            task, event = await actions_service.cancel_task_with_actions(
                conn, tenant_id=who.principal.tenant_id, task_id=task_id
            )
        if event is not None:
            await who.state.live.publish({task_id: [event.model_dump(mode="json")]})
        return task

    @server.tool(annotations=READ_ONLY)
    async def search_memory(
        ctx: Context,  # type: ignore[type-arg]
        query: Annotated[str, Field(min_length=1, max_length=2_000)],
        scope: Annotated[
            str | None, Field(description="tenant, crew:<name>, agent:<role>, thread:<id>")
        ] = None,
        limit: Annotated[int, Field(ge=1, le=100)] = 10,
    ) -> MemoryPage:
        """Search the tenant's long-term memory by meaning."""
        who = caller(ctx)
        state = who.state
        where = memory_service.MemoryFilter(scopes=[Scope.parse(scope)] if scope else None)
        async with who.transaction(Role.viewer) as conn:
            items = await memory_service.search(
                conn,
                tenant_id=who.principal.tenant_id,
                embedders=state.embedders,
                query=query,
                limit=limit,
                where=where,
                ef_search=state.settings.memory_ef_search,
            )
        return MemoryPage(items=items)

    @server.tool()
    async def save_memory(
        ctx: Context,  # type: ignore[type-arg]
        content: Annotated[str, Field(description="The fact, preference or lesson to keep.")],
        scope: Annotated[
            str, Field(description="tenant, crew:<name>, agent:<role> or thread:<id>")
        ] = "tenant",
        kind: MemoryKind = MemoryKind.fact,
        subject: Annotated[
            str | None, Field(description="What it is about; a newer fact on it supersedes.")
        ] = None,
    ) -> MemorySaved:
        """Save a memory the hub's crews recall in later runs."""
        who = caller(ctx)
        item = validated(MemoryCreate, content=content, scope=scope, kind=kind, subject=subject)
        async with who.transaction(Role.member) as conn:
            return await memory_service.remember(
                conn,
                tenant_id=who.principal.tenant_id,
                embedders=who.state.embedders,
                item=item,
                index_builder=who.state.memory_indexes,
            )

    @server.tool(annotations=READ_ONLY)
    async def list_pending_approvals(
        ctx: Context,  # type: ignore[type-arg]
        cursor: Annotated[str | None, Field(max_length=500)] = None,
        limit: Annotated[int, Field(ge=1, le=actions_service.MAX_PAGE)] = 50,
    ) -> ActionPage:
        """Changes crews proposed that wait for a person's decision, newest first."""
        who = caller(ctx)
        async with who.transaction(Role.viewer) as conn:
            items, next_cursor = await actions_service.list_actions(
                conn,
                tenant_id=who.principal.tenant_id,
                status=ActionStatus.pending,
                cursor=cursor,
                limit=limit,
            )
        return ActionPage(items=items, next_cursor=next_cursor)

    @server.tool(annotations=ToolAnnotations(destructiveHint=True, idempotentHint=False))
    async def decide_approval(
        ctx: Context,  # type: ignore[type-arg]
        action_id: uuid.UUID,
        decision: Literal["approve", "reject"],
        reason: Annotated[str | None, Field(max_length=2_000)] = None,
    ) -> ActionRead:
        """Approve (it then runs once) or reject a proposed change; owners and admins only."""
        who = caller(ctx)
        tenant_id = who.principal.tenant_id
        decide = actions_service.approve if decision == "approve" else actions_service.reject
        async with who.transaction(Role.admin) as conn:
            known = await actions_service.get_action(conn, tenant_id=tenant_id, action_id=action_id)
            after = await tasks_service.last_event_seq(
                conn, tenant_id=tenant_id, task_id=known.task_id
            )
            action = await decide(
                conn, tenant_id=tenant_id, action_id=action_id, actor=who.actor, reason=reason
            )
        await publish_stored(
            who.state.live,
            who.state.app_pool,
            tenant_id=tenant_id,
            task_id=action.task_id,
            after=after,
        )
        return action
