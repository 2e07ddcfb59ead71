"""The roles of a tenant's users and API keys."""

from __future__ import annotations

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
