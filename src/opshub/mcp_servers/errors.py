from __future__ import annotations

from opshub.errors import InvalidInputError, NotFoundError


class McpServerNotFoundError(NotFoundError):
    pass


class InvalidMcpServerError(InvalidInputError):
    pass
