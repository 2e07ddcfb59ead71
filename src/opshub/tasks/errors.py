from __future__ import annotations

from opshub.errors import ConflictError, InvalidInputError


class UnknownCrewError(InvalidInputError):
    code = "unknown_crew"


class TaskFinishedError(ConflictError):
    code = "task_finished"


class TaskNotRetryableError(ConflictError):
    code = "task_not_retryable"


class WebhookSecretMissingError(InvalidInputError):
    code = "webhook_secret_missing"


class IdempotencyKeyMismatchError(InvalidInputError):
    code = "idempotency_key_mismatch"
