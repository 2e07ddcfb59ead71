"""A tenant's auto-approval rules: one per action kind, read and replaced as a set, and the one
decision they make (does this proposal go ahead without a person?)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path

from opshub.actions.kinds import ActionKind, BudgetChange, Payload
from opshub.actions.schemas import PoliciesPut, PoliciesRead, PolicyRule, PolicyRuleRead
from opshub.db.sql import Connection, Record, load_queries

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))


def amount_of(payload: Payload) -> tuple[Decimal, str] | None:
    """What a proposal puts at stake, in its currency; None for kinds without an amount.

    A budget change risks the difference per day; with the previous budget unknown, the whole
    new daily budget.
    """
    if isinstance(payload, BudgetChange):
        previous = payload.previous_daily_budget
        change = payload.daily_budget if previous is None else abs(payload.daily_budget - previous)
        return change, payload.currency
    return None


def auto_approves(rule: PolicyRule, payload: Payload) -> bool:
    if not rule.auto_approve:
        return False
    if rule.max_amount is None:
        return True
    amount = amount_of(payload)
    # No amount to compare, or one in another currency: a cap can't be checked, so a person decides.
    if amount is None or amount[1] != rule.currency:
        return False
    return amount[0] <= rule.max_amount


def describe(rule: PolicyRule) -> str:
    """The decision reason an auto-approval records."""
    if rule.max_amount is None:
        return f"tenant policy: {rule.kind.value} is approved automatically"
    return f"tenant policy: {rule.kind.value} up to {rule.max_amount} {rule.currency} a day"


def _rule(row: Record) -> PolicyRule:
    return PolicyRule.model_construct(
        kind=ActionKind(row["kind"]),
        auto_approve=row["auto_approve"],
        max_amount=row["max_amount"],
        currency=row["currency"],
    )


async def get_rule(
    conn: Connection, *, tenant_id: uuid.UUID, kind: ActionKind
) -> PolicyRule | None:
    row = await QUERIES["get_policy"].fetchrow(conn, tenant_id=tenant_id, kind=kind.value)
    return _rule(row) if row is not None else None


async def get_policies(conn: Connection, *, tenant_id: uuid.UUID) -> PoliciesRead:
    rows = await QUERIES["list_policies"].fetch(conn, tenant_id=tenant_id)
    return PoliciesRead(rules=[PolicyRuleRead.model_validate(dict(row)) for row in rows])


async def put_policies(
    conn: Connection, *, tenant_id: uuid.UUID, body: PoliciesPut
) -> PoliciesRead:
    """Replace the tenant's rules with ``body``'s (validated by its schema: known kinds, one
    rule per kind, a cap only with its currency and only on a kind with an amount)."""
    kinds = [rule.kind.value for rule in body.rules]
    await QUERIES["delete_other_policies"].execute(conn, tenant_id=tenant_id, kinds=kinds)
    await QUERIES["upsert_policy"].executemany(
        conn,
        [
            {
                "tenant_id": tenant_id,
                "kind": rule.kind.value,
                "auto_approve": rule.auto_approve,
                "max_amount": rule.max_amount,
                "currency": rule.currency,
            }
            for rule in body.rules
        ],
    )
    return await get_policies(conn, tenant_id=tenant_id)
