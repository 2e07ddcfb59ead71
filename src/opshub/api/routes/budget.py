"""/v1/budget: the tenant's monthly budget for platform-paid model usage, and this month's spend."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field

from opshub.api.deps import AdminDep, ViewerDep
from opshub.llm import usage as usage_ledger
from opshub.schemas import StrictInput

router = APIRouter(prefix="/v1/budget", tags=["budget"])


class BudgetPut(StrictInput):
    monthly_platform_usd: (
        Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)] | None
    ) = Field(description="null removes the budget")


class BudgetRead(BaseModel):
    monthly_platform_usd: Decimal | None
    platform_spend_this_month_usd: Decimal


async def _read(ctx: ViewerDep) -> BudgetRead:
    tenant_id = ctx.principal.tenant_id
    return BudgetRead(
        monthly_platform_usd=await usage_ledger.get_budget(ctx.conn, tenant_id=tenant_id),
        platform_spend_this_month_usd=await usage_ledger.platform_spend_this_month(
            ctx.conn, tenant_id=tenant_id
        ),
    )


@router.get("", response_model=BudgetRead)
async def get_budget(ctx: ViewerDep) -> BudgetRead:
    return await _read(ctx)


@router.put("", response_model=BudgetRead)
async def put_budget(ctx: AdminDep, body: BudgetPut) -> BudgetRead:
    await usage_ledger.put_budget(
        ctx.conn, tenant_id=ctx.principal.tenant_id, monthly_usd=body.monthly_platform_usd
    )
    return await _read(ctx)
