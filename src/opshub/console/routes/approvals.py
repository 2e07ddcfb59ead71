"""The approvals inbox: pending actions with their exact payload, decided with a reason."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from opshub.actions import service as actions_service
from opshub.actions.models import ActionStatus
from opshub.actions.schemas import ActionRead
from opshub.api.deps import StateDep
from opshub.console.deps import FormDep, PageDep
from opshub.console.render import live_page
from opshub.runtime.live import publish_stored
from opshub.tasks import service as tasks_service

router = APIRouter(prefix="/console/approvals")


@router.get("", response_class=HTMLResponse, include_in_schema=False)
async def inbox(request: Request, ctx: PageDep) -> HTMLResponse:
    tenant_id = ctx.principal.tenant_id
    pending, _ = await actions_service.list_actions(
        ctx.conn, tenant_id=tenant_id, status=ActionStatus.pending, limit=actions_service.MAX_PAGE
    )
    recent, _ = await actions_service.list_actions(ctx.conn, tenant_id=tenant_id, limit=20)
    decided = [action for action in recent if action.status != ActionStatus.pending]
    # The audit trail is for those who decide, as GET /v1/audit is.
    audit = (
        (await actions_service.list_audit(ctx.conn, tenant_id=tenant_id, limit=30))[0]
        if ctx.can_decide
        else []
    )
    return await live_page(
        request, "approvals.html", ctx, pending=pending, decided=decided, audit=audit
    )


async def _decide(
    decide: Callable[..., Awaitable[ActionRead]],
    ctx: FormDep,
    state: StateDep,
    later: BackgroundTasks,
    action_id: uuid.UUID,
    reason: str,
) -> Response:
    """As POST /v1/actions/{id}/approve|reject: the same service, the same live publish."""
    ctx.require_decide()
    tenant_id = ctx.principal.tenant_id
    known = await actions_service.get_action(ctx.conn, tenant_id=tenant_id, action_id=action_id)
    after = await tasks_service.last_event_seq(ctx.conn, tenant_id=tenant_id, task_id=known.task_id)
    action = await decide(
        ctx.conn,
        tenant_id=tenant_id,
        action_id=action_id,
        actor=f"user:{ctx.principal.subject_id}",
        reason=reason.strip() or None,
    )
    later.add_task(
        publish_stored,
        state.live,
        state.app_pool,
        tenant_id=tenant_id,
        task_id=action.task_id,
        after=after,
    )
    return RedirectResponse("/console/approvals", status_code=303)


Reason = Annotated[str, Form(max_length=2000)]


@router.post("/{action_id}/approve", include_in_schema=False)
async def approve(
    ctx: FormDep, state: StateDep, later: BackgroundTasks, action_id: uuid.UUID, reason: Reason = ""
) -> Response:
    return await _decide(actions_service.approve, ctx, state, later, action_id, reason)


@router.post("/{action_id}/reject", include_in_schema=False)
async def reject(
    ctx: FormDep, state: StateDep, later: BackgroundTasks, action_id: uuid.UUID, reason: Reason = ""
) -> Response:
    return await _decide(actions_service.reject, ctx, state, later, action_id, reason)
