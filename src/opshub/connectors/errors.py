"""What a connector call can fail with. Messages are short, actionable and never hold a secret:
they go back to the agent verbatim, and into task events."""

from __future__ import annotations

from opshub.credentials.models import Provider


class ConnectorError(Exception):
    """A call to a tenant's connected service failed."""

    def __init__(self, provider: Provider, message: str) -> None:
        super().__init__(message)
        self.provider = provider
        self.message = message


class ConnectorAuthError(ConnectorError):
    """The service refused the tenant's credential: it is marked invalid."""


class ConnectorRateLimitedError(ConnectorError):
    """Still rate limited after the retries the hint allowed."""

    def __init__(self, provider: Provider, message: str, retry_after: float | None) -> None:
        super().__init__(provider, message)
        self.retry_after = retry_after


class ConnectorUnavailableError(ConnectorError):
    """Network failure, timeout or 5xx after the retries."""


class ConnectorRequestError(ConnectorError):
    """The service rejected the request itself (bad query, unknown id, missing permission)."""


class ConnectorResponseError(ConnectorError):
    """The service answered something we cannot read."""


def ensure_currency(provider: Provider, *, account: str, asked: str) -> None:
    """A budget is only ever written in the account's own currency: no silent conversion."""
    if account != asked:
        raise ConnectorRequestError(
            provider,
            f"the ad account bills in {account}, not {asked}; restate the budget in {account}",
        )
