"""Who is calling: the principal every authenticated request resolves to, and its role."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """Ordered from most to least powerful; ``Role.at_least`` compares by that order."""

    owner = "owner"
    admin = "admin"
    member = "member"
    viewer = "viewer"

    @property
    def rank(self) -> int:
        return _ROLE_RANK[self]

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


_ROLE_RANK = {Role.viewer: 0, Role.member: 1, Role.admin: 2, Role.owner: 3}


class PrincipalKind(StrEnum):
    user = "user"
    api_key = "api_key"


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: uuid.UUID
    role: Role
    kind: PrincipalKind
    subject_id: uuid.UUID
