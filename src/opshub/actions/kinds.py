"""The kinds of action a crew can propose, and the exact payload each one carries.

Tools build these payloads, policies read them, executors send them: the one contract between the
three. Amounts are decimals in major units of the stated currency.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from opshub.connectors.models import Channel
from opshub.credentials.models import Provider


class ActionKind(StrEnum):
    product_create = "saleor.product_create"
    stock_update = "saleor.stock_update"
    voucher_create = "saleor.voucher_create"
    order_note = "saleor.order_note"
    budget_change = "ads.budget_change"
    campaign_status = "ads.campaign_status"
    mcp_tool_call = "mcp.tool_call"


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VariantAttribute(Payload):
    """A value of one of the product type's variant attributes, as checked at proposal."""

    id: str
    name: str
    input_type: str
    values: list[str] = Field(min_length=1, max_length=20)


class ProductCreate(Payload):
    """Product + channel listings + one variant with its price, stock and attribute values, as
    one action."""

    product_type_id: str
    category_id: str
    name: str = Field(min_length=1, max_length=250)
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=255)
    description: str = Field(default="", max_length=5000)  # plain text; sent as EditorJS
    channel_ids: list[str] = Field(min_length=1)
    sku: str = Field(min_length=1, max_length=255)
    price: Decimal = Field(gt=0)
    cost_price: Decimal | None = Field(default=None, ge=0)
    warehouse_id: str
    quantity: int = Field(ge=0)
    variant_attributes: list[VariantAttribute] = Field(default_factory=list)


class StockUpdate(Payload):
    variant_id: str
    warehouse_id: str
    quantity: int = Field(ge=0)
    previous_quantity: int | None = None


class VoucherCreate(Payload):
    name: str = Field(min_length=1, max_length=255)
    code: str = Field(pattern=r"^[A-Za-z0-9_-]{3,40}$")
    discount_value_type: Literal["PERCENTAGE", "FIXED"]
    discount_value: Decimal = Field(gt=0)
    channel_id: str
    usage_limit: int | None = Field(default=None, ge=1)
    min_amount_spent: Decimal | None = Field(default=None, ge=0)


class OrderNote(Payload):
    order_id: str
    message: str = Field(min_length=1, max_length=2000)


class BudgetChange(Payload):
    channel: Channel
    campaign_id: str
    # Google Ads: the campaign budget's resource name (budgets are their own objects there).
    budget_id: str | None = None
    daily_budget: Decimal = Field(gt=0)
    previous_daily_budget: Decimal | None = None
    currency: str = Field(pattern=r"^[A-Z]{3}$")


class CampaignStatus(Payload):
    channel: Channel
    campaign_id: str
    status: Literal["PAUSED", "ACTIVE"]


class McpToolCall(Payload):
    """One call of a side-effecting tool on one of the tenant's MCP servers."""

    server: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    tool: str = Field(min_length=1, max_length=128)
    arguments: dict[str, Any] = Field(default_factory=dict)


PAYLOADS: dict[ActionKind, type[Payload]] = {
    ActionKind.product_create: ProductCreate,
    ActionKind.stock_update: StockUpdate,
    ActionKind.voucher_create: VoucherCreate,
    ActionKind.order_note: OrderNote,
    ActionKind.budget_change: BudgetChange,
    ActionKind.campaign_status: CampaignStatus,
    ActionKind.mcp_tool_call: McpToolCall,
}


def provider_for(payload: Payload) -> Provider | None:
    """Whose credential executes the action; None for an MCP server (its own secret)."""
    if isinstance(payload, McpToolCall):
        return None
    if isinstance(payload, BudgetChange | CampaignStatus):
        return Provider(payload.channel.value)
    return Provider.saleor


def parse_payload(kind: ActionKind, data: dict[str, object]) -> Payload:
    return PAYLOADS[kind].model_validate(data)
