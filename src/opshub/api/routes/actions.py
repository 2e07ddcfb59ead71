"""/v1/actions and /v1/policies: proposed changes, their approval, and the auto-approval rules."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Body, Query

from opshub.actions import policies as policies_service
from opshub.actions import service as actions_service
from opshub.actions.kinds import ActionKind
from opshub.actions.models import ActionStatus
from opshub.actions.schemas import (
    ActionDecision,
    ActionPage,
    ActionRead,
    AuditPage,
    PoliciesPut,
    PoliciesRead,
)
from opshub.api.deps import AdminDep, StateDep, TenantContext, ViewerDep
from opshub.api.state import AppState
from opshub.runtime.live import publish_stored
from opshub.tasks import service as tasks_service

router = APIRouter(tags=["actions"])


def _actor(ctx: TenantContext) -> str:
    return f"{ctx.principal.kind.value}:{ctx.principal.subject_id}"


@router.get("/v1/actions", response_model=ActionPage)
async def list_actions(
    ctx: ViewerDep,
    status: ActionStatus | None = None,
    task_id: uuid.UUID | None = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=actions_service.MAX_PAGE)] = 50,
) -> ActionPage:
    items, next_cursor = await actions_service.list_actions(
        ctx.conn,
        tenant_id=ctx.principal.tenant_id,
        status=status,
        task_id=task_id,
        cursor=cursor,
        limit=limit,
    )
    return ActionPage(items=items, next_cursor=next_cursor)


@router.get("/v1/actions/{action_id}", response_model=ActionRead)
async def get_action(ctx: ViewerDep, action_id: uuid.UUID) -> ActionRead:
    return await actions_service.get_action(
        ctx.conn, tenant_id=ctx.principal.tenant_id, action_id=action_id
    )


@router.post("/v1/actions/{action_id}/approve", response_model=ActionRead)
async def approve_action(
    ctx: AdminDep,
    state: StateDep,
    later: BackgroundTasks,
    action_id: uuid.UUID,
    body: Annotated[ActionDecision | None, Body()] = None,
) -> ActionRead:
    """The action runs once, shortly after; only owners and admins decide."""
    return await _decide(actions_service.approve, ctx, state, later, action_id, body)


@router.post("/v1/actions/{action_id}/reject", response_model=ActionRead)
async def reject_action(
    ctx: AdminDep,
    state: StateDep,
    later: BackgroundTasks,
    action_id: uuid.UUID,
    body: Annotated[ActionDecision | None, Body()] = None,
) -> ActionRead:
    return await _decide(actions_service.reject, ctx, state, later, action_id, body)


async def _decide(
    decide: Callable[..., Awaitable[ActionRead]],
    ctx: TenantContext,
    state: AppState,
    later: BackgroundTasks,
    action_id: uuid.UUID,
    body: ActionDecision | None,
) -> ActionRead:
    tenant_id = ctx.principal.tenant_id
    known = await actions_service.get_action(ctx.conn, tenant_id=tenant_id, action_id=action_id)
    after = await tasks_service.last_event_seq(ctx.conn, tenant_id=tenant_id, task_id=known.task_id)
    action = await decide(
        ctx.conn,
        tenant_id=tenant_id,
        action_id=action_id,
        actor=_actor(ctx),
        reason=body.reason if body else None,
    )
    # After the response, so after the commit: live watchers of the task see the decision (and
    # the task's end, when it was the last one) at once.
    later.add_task(
        publish_stored,
        state.live,
        state.app_pool,
        tenant_id=tenant_id,
        task_id=action.task_id,
        after=after,
    )
    return action


@router.get("/v1/audit", response_model=AuditPage)
async def list_audit(
    ctx: AdminDep,
    kind: ActionKind | None = None,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=actions_service.MAX_PAGE)] = 50,
) -> AuditPage:
    """The append-only action audit, newest first: every proposal, decision and outcome."""
    items, next_cursor = await actions_service.list_audit(
        ctx.conn, tenant_id=ctx.principal.tenant_id, kind=kind, cursor=cursor, limit=limit
    )
    return AuditPage(items=items, next_cursor=next_cursor)


@router.get("/v1/policies", response_model=PoliciesRead)
async def get_policies(ctx: ViewerDep) -> PoliciesRead:
    return await policies_service.get_policies(ctx.conn, tenant_id=ctx.principal.tenant_id)


@router.put("/v1/policies", response_model=PoliciesRead)
async def put_policies(ctx: AdminDep, body: PoliciesPut) -> PoliciesRead:
    """Replace the rules: kinds without a rule always wait for a person."""
    return await policies_service.put_policies(
        ctx.conn, tenant_id=ctx.principal.tenant_id, body=body
    )
