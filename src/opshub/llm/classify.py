"""What a provider's exception means for a run: a bad key, or a provider that is down."""

from __future__ import annotations

from opshub.credentials.errors import CredentialInvalidError
from opshub.errors import DomainError
from opshub.llm.errors import ProviderUnavailableError

_AUTH_FAILURES = {"AuthenticationError", "PermissionDeniedError"}
_UNAVAILABLE = {
    "RateLimitError",
    "InternalServerError",
    "APIConnectionError",
    "APITimeoutError",
    "OverloadedError",
    "ServiceUnavailableError",
}


def classify_provider_error(exc: BaseException, *, provider: str) -> DomainError | None:
    """A domain error for an OpenAI/Anthropic SDK failure anywhere in the cause chain, else None.

    Matched by class name and HTTP status: both SDKs name them alike, neither needs importing
    here, and some (Anthropic's 529) are only recognisable by their status.
    """
    seen: BaseException | None = exc
    while seen is not None:
        name = type(seen).__name__
        status = getattr(seen, "status_code", None)
        if name in _AUTH_FAILURES or status in (401, 403):
            return CredentialInvalidError(f"{provider} refused the key; store a valid one")
        if name in _UNAVAILABLE or (isinstance(status, int) and (status == 429 or status >= 500)):
            return ProviderUnavailableError(f"{provider} is unavailable after retries ({name})")
        seen = seen.__cause__ or seen.__context__
    return None
