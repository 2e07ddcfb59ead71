from __future__ import annotations

from opshub.errors import ConflictError, DomainError, InvalidInputError


class CredentialMissingError(DomainError):
    code = "credential_missing"


class CredentialInvalidError(DomainError):
    code = "credential_invalid"


class CredentialConflictError(ConflictError):
    code = "credential_conflict"


class InvalidSecretError(InvalidInputError):
    """The secret does not have the shape its provider needs."""


class CredentialStoreError(DomainError):
    """The store can't be read or written (Vault down, a key missing): the operator's problem."""

    code = "credential_store_unavailable"
