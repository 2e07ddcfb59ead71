"""Request and response shapes of /v1/actions and /v1/policies (API.md, "Actions")."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator

from opshub.actions.kinds import ActionKind
from opshub.actions.models import ActionStatus
from opshub.schemas import StrictInput

# The kinds whose payload carries an amount a policy can cap (see ``policies.amount_of``).
KINDS_WITH_AMOUNT = frozenset({ActionKind.budget_change})


class ActionError(BaseModel):
    code: str
    message: str


class ActionRead(BaseModel):
    id: uuid.UUID
    task_id: uuid.UUID
    tool: str
    kind: ActionKind
    payload: dict[str, Any]
    summary: str
    estimated_impact: dict[str, Any] | None
    status: ActionStatus
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None = Field(
        description='"policy", or who decided: "user:<id>" or "api_key:<id>".'
    )
    decision_reason: str | None
    executed_at: datetime | None
    outcome: dict[str, Any] | None = Field(description="What the execution made or changed.")
    error: ActionError | None


class ActionPage(BaseModel):
    items: list[ActionRead]
    next_cursor: str | None


class ActionDecision(StrictInput):
    reason: str | None = Field(default=None, min_length=1, max_length=2000)


class PolicyRule(StrictInput):
    kind: ActionKind
    auto_approve: bool
    max_amount: Decimal | None = Field(
        default=None,
        ge=0,
        max_digits=14,
        decimal_places=2,
        description="Auto-approve only up to this amount (a budget change: the change per day).",
    )
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$", examples=["USD"])

    @model_validator(mode="after")
    def _cap_in_a_currency(self) -> PolicyRule:
        if self.max_amount is not None and self.currency is None:
            raise ValueError("max_amount needs the currency it is counted in")
        if self.max_amount is not None and self.kind not in KINDS_WITH_AMOUNT:
            kinds = ", ".join(sorted(KINDS_WITH_AMOUNT))
            raise ValueError(f"only {kinds} carries an amount to cap; drop max_amount")
        return self


class PolicyRuleRead(BaseModel):
    kind: ActionKind
    auto_approve: bool
    max_amount: Decimal | None
    currency: str | None
    updated_at: datetime


class PoliciesRead(BaseModel):
    rules: list[PolicyRuleRead]


class PoliciesPut(StrictInput):
    """The whole rule set: a kind left out has no rule, so its actions wait for a person."""

    rules: list[PolicyRule] = Field(max_length=len(ActionKind))

    @field_validator("rules")
    @classmethod
    def _one_rule_per_kind(cls, rules: list[PolicyRule]) -> list[PolicyRule]:
        kinds = [rule.kind for rule in rules]
        if len(set(kinds)) != len(kinds):
            raise ValueError("one rule per kind")
        return rules


class AuditEntry(BaseModel):
    """One line of the append-only action audit: who did what to which action, when."""

    id: int
    action_id: uuid.UUID
    kind: ActionKind
    task_id: uuid.UUID
    at: datetime
    actor: str = Field(description='"policy", "executor", or "user:<id>" / "api_key:<id>".')
    event: str
    detail: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None
