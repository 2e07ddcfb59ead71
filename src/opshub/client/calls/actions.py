"""Proposed actions and their approval, the audit trail, auto-approval policies."""

from __future__ import annotations

import uuid

from opshub.actions.schemas import ActionPage, ActionRead, AuditPage, PoliciesPut, PoliciesRead
from opshub.client.calls.base import Call, body, call


def list_actions(
    *,
    status: str | None = None,
    task_id: uuid.UUID | str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Call[ActionPage]:
    params = {"status": status, "task_id": task_id, "cursor": cursor, "limit": limit}
    return call("GET", "/v1/actions", ActionPage, params=params)


def get_action(action_id: uuid.UUID | str) -> Call[ActionRead]:
    return call("GET", f"/v1/actions/{action_id}", ActionRead)


def approve_action(action_id: uuid.UUID | str, *, reason: str | None = None) -> Call[ActionRead]:
    sent = {"reason": reason} if reason else {}
    return call("POST", f"/v1/actions/{action_id}/approve", ActionRead, json=sent)


def reject_action(action_id: uuid.UUID | str, *, reason: str | None = None) -> Call[ActionRead]:
    sent = {"reason": reason} if reason else {}
    return call("POST", f"/v1/actions/{action_id}/reject", ActionRead, json=sent)


def list_audit(
    *, kind: str | None = None, cursor: str | None = None, limit: int = 50
) -> Call[AuditPage]:
    params = {"kind": kind, "cursor": cursor, "limit": limit}
    return call("GET", "/v1/audit", AuditPage, params=params)


def get_policies() -> Call[PoliciesRead]:
    return call("GET", "/v1/policies", PoliciesRead)


def put_policies(policies: PoliciesPut) -> Call[PoliciesRead]:
    return call("PUT", "/v1/policies", PoliciesRead, json=body(policies))
