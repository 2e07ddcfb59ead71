"""Tokens per model call, their price, the per-tenant ledger, and the monthly platform budget.

Usage paid with the platform's key is billable and counts against the tenant's budget; usage
on the tenant's own key (BYOK) is recorded too, at no model cost to the platform.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog

from opshub.config import ModelPrice
from opshub.credentials.models import Source
from opshub.db.sql import Connection, load_queries
from opshub.llm.errors import BudgetExceededError
from opshub.llm.prices import price_for

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))
log = structlog.get_logger(__name__)
_MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class TokenUsage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0

    @classmethod
    def from_provider(cls, usage: dict[str, Any] | None) -> TokenUsage:
        """OpenAI (prompt/completion, prompt_tokens_details.cached_tokens) or Anthropic names."""
        if not usage:
            return cls()
        details = usage.get("prompt_tokens_details") or {}
        cached = (
            usage.get("cached_prompt_tokens")
            or usage.get("cache_read_input_tokens")
            or (details.get("cached_tokens") if isinstance(details, dict) else 0)
            or 0
        )
        return cls(
            input_tokens=int(usage.get("prompt_tokens") or usage.get("input_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or usage.get("output_tokens") or 0),
            cached_tokens=int(cached),
        )

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_tokens + other.cached_tokens,
        )


def cost_usd(model: str, usage: TokenUsage, overrides: dict[str, ModelPrice]) -> Decimal:
    """Cached input tokens are part of the input count and priced at the cached rate."""
    price = price_for(model.rpartition("/")[2], overrides)
    if price is None:
        log.warning("no price for model; recorded at zero cost", model=model)
        return Decimal(0)
    fresh = max(usage.input_tokens - usage.cached_tokens, 0)
    total = (
        Decimal(fresh) * Decimal(str(price.input))
        + Decimal(usage.cached_tokens) * Decimal(str(price.cached_input))
        + Decimal(usage.output_tokens) * Decimal(str(price.output))
    )
    return (total / _MILLION).quantize(Decimal("0.000001"))


async def record(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    task_id: uuid.UUID | None,
    provider: str,
    model: str,
    usage: TokenUsage,
    billed_to: Source,
    overrides: dict[str, ModelPrice],
) -> Decimal:
    cost = cost_usd(model, usage, overrides)
    await QUERIES["insert_usage"].execute(
        conn,
        tenant_id=tenant_id,
        task_id=task_id,
        provider=provider,
        model=model,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cached_tokens=usage.cached_tokens,
        cost_usd=cost,
        billed_to=billed_to.value,
    )
    return cost


async def billable_this_month(conn: Connection, *, tenant_id: uuid.UUID) -> Decimal:
    billable: Decimal = await QUERIES["billable_this_month"].fetchval(conn, tenant_id=tenant_id)
    return billable


async def get_budget(conn: Connection, *, tenant_id: uuid.UUID) -> Decimal | None:
    budget: Decimal | None = await QUERIES["get_budget"].fetchval(conn, tenant_id=tenant_id)
    return budget


async def put_budget(
    conn: Connection, *, tenant_id: uuid.UUID, monthly_usd: Decimal | None
) -> None:
    if monthly_usd is None:
        await QUERIES["delete_budget"].execute(conn, tenant_id=tenant_id)
    else:
        await QUERIES["put_budget"].execute(
            conn, tenant_id=tenant_id, monthly_platform_usd=monthly_usd
        )


async def platform_spend_this_month(conn: Connection, *, tenant_id: uuid.UUID) -> Decimal:
    spend: Decimal = await QUERIES["platform_spend_this_month"].fetchval(conn, tenant_id=tenant_id)
    return spend


async def ensure_within_budget(conn: Connection, *, tenant_id: uuid.UUID) -> None:
    """Refuse platform-paid work once this month's platform spend has reached the budget."""
    budget = await get_budget(conn, tenant_id=tenant_id)
    if budget is None:
        return
    spend = await platform_spend_this_month(conn, tenant_id=tenant_id)
    if spend >= budget:
        raise BudgetExceededError(
            f"this month's platform spend ({spend:.2f} USD) has reached the budget "
            f"({budget:.2f} USD); raise the budget or add your own model key"
        )
