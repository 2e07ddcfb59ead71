"""What a memory is about (its scope) and what kind of thing it records."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from opshub.memory.errors import InvalidScopeError


class ScopeKind(StrEnum):
    tenant = "tenant"
    crew = "crew"
    agent = "agent"
    thread = "thread"


class MemoryKind(StrEnum):
    fact = "fact"
    preference = "preference"
    outcome = "outcome"
    insight = "insight"


@dataclass(frozen=True)
class Scope:
    """``tenant``, ``crew:<name>``, ``agent:<role>`` or ``thread:<uuid>`` on the wire."""

    kind: ScopeKind
    key: str = ""

    @classmethod
    def parse(cls, text: str) -> Scope:
        kind, _, key = text.partition(":")
        try:
            scope_kind = ScopeKind(kind)
        except ValueError:
            raise InvalidScopeError(
                f"unknown scope {text!r}: use tenant, crew:<name>, agent:<role> or thread:<id>"
            ) from None
        if (scope_kind is ScopeKind.tenant) != (key == ""):
            raise InvalidScopeError(f"scope {text!r} needs a key after ':' (none for tenant)")
        if len(key) > 200:
            raise InvalidScopeError("a scope key is at most 200 characters")
        if scope_kind is ScopeKind.thread:
            try:
                uuid.UUID(key)
            except ValueError:
                raise InvalidScopeError(f"thread scope needs a thread id, not {key!r}") from None
        return cls(scope_kind, key)

    def __str__(self) -> str:
        return self.kind.value if self.kind is ScopeKind.tenant else f"{self.kind.value}:{self.key}"


TENANT_SCOPE = Scope(ScopeKind.tenant)
