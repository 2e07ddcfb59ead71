"""Who is calling: the principal every authenticated request resolves to."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from opshub.tenants.models import Role


class PrincipalKind(StrEnum):
    user = "user"
    api_key = "api_key"


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: uuid.UUID
    role: Role
    kind: PrincipalKind
    subject_id: uuid.UUID
