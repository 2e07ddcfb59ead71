from __future__ import annotations

from opshub.errors import DomainError, InvalidInputError


class EmbeddingFailedError(DomainError):
    """The embedding model could not be reached or refused the call."""

    code = "embedding_failed"


class UnknownEmbeddingModelError(InvalidInputError):
    code = "unknown_embedding_model"

    def __init__(self, model: str) -> None:
        super().__init__(f"unknown embedding model {model!r}", details={"model": model})


class InvalidScopeError(InvalidInputError):
    code = "invalid_scope"
