from __future__ import annotations

from opshub.errors import DomainError


class BudgetExceededError(DomainError):
    code = "budget_exceeded"


class ProviderUnavailableError(DomainError):
    """The provider kept failing (rate limits, 5xx, overload) after the retries."""

    code = "provider_unavailable"
