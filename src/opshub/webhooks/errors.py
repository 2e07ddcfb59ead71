from __future__ import annotations

from opshub.errors import NotFoundError


class DeliveryNotFoundError(NotFoundError):
    pass
