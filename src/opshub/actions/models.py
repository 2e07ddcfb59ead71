"""An action's lifecycle, and who decides or acts on it as the audit names them.

Actions are read and written as raw SQL (``queries.sql``) like tasks: the claim is a queue
query, and every other statement is a single-row transition guarded by the status it leaves.
"""

from __future__ import annotations

from enum import StrEnum


class ActionStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    executed = "executed"
    failed = "failed"

    @property
    def open(self) -> bool:
        """Still to happen: waiting for a decision, or approved and not yet executed."""
        return self in OPEN


OPEN = frozenset({ActionStatus.pending, ActionStatus.approved})


class AuditEvent(StrEnum):
    proposed = "proposed"
    auto_approved = "auto_approved"
    approved = "approved"
    rejected = "rejected"
    execution_started = "execution_started"
    retry_scheduled = "retry_scheduled"
    executed = "executed"
    failed = "failed"


POLICY_ACTOR = "policy"
