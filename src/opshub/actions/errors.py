from __future__ import annotations

from opshub.errors import ConflictError, InvalidInputError


class InvalidActionError(InvalidInputError):
    """A proposal whose payload does not match its kind: nothing is stored (``invalid_request``,
    with the offending fields in ``details``, as any other validation error)."""


class ActionNotPendingError(ConflictError):
    """Only a pending action can be approved or rejected."""

    code = "action_not_pending"
