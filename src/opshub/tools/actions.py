"""Propose changes to the world. Nothing here changes anything: each tool records an action with
its exact payload and a summary a person can approve; the business's policy may approve it at
once. Figures the policy judges (a budget's current value, its currency) come from the platform,
never from the model."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field

from opshub.actions import service as actions_service
from opshub.actions.kinds import (
    ActionKind,
    BudgetChange,
    CampaignStatus,
    OrderNote,
    Payload,
    ProductCreate,
    StockUpdate,
    VariantAttribute,
    VoucherCreate,
)
from opshub.connectors.errors import ConnectorRequestError
from opshub.connectors.models import Channel
from opshub.connectors.saleor import SaleorClient, require_id
from opshub.connectors.saleor_attributes import fill_variant_attributes
from opshub.credentials.models import Provider
from opshub.db.engine import tenant_transaction
from opshub.tasks.models import EventType
from opshub.tools.ads import AdsTool
from opshub.tools.connector import ToolFailure
from opshub.tools.context import ToolContext

CHANNEL_NAMES = {
    Channel.google_ads: "Google Ads",
    Channel.meta_ads: "Meta",
    Channel.linkedin_ads: "LinkedIn",
}
REASON = Field(min_length=3, max_length=500, description="Why, in one sentence for the approver.")


def shop_ids(*ids: tuple[str, str]) -> None:
    """Each ``(value, type)`` a Saleor global id of that type, or the proposal is refused: a
    wrong id would otherwise fail only once approved."""
    for value, type_name in ids:
        try:
            require_id(value, type_name, "the shop tools")
        except ConnectorRequestError as exc:
            raise ToolFailure(f"The proposal is not valid: {exc.message}.") from exc


def propose(
    context: ToolContext,
    *,
    tool: str,
    kind: ActionKind,
    payload: Payload,
    summary: str,
    impact: dict[str, Any] | None = None,
) -> str:
    """Record the proposal in the run's task, under the tenant's policies; the model's answer."""
    if context.task_id is None:
        raise ToolFailure("Changes can only be proposed within a task.")
    task_id = context.task_id

    async def record() -> Any:
        async with tenant_transaction(context.app_pool, context.tenant_id) as conn:
            return await actions_service.propose(
                conn,
                tenant_id=context.tenant_id,
                task_id=task_id,
                tool=tool,
                kind=kind,
                payload=payload.model_dump(mode="json"),
                summary=summary,
                estimated_impact=impact,
            )

    action = context.run(record())
    if context.emit is not None:
        context.emit(
            EventType.action_proposed,
            tool=tool,
            text=summary,
            action={"id": str(action.id), "kind": kind.value, "status": action.status},
        )
    said = f"Proposed action {action.id}: {summary.rstrip('.')}."
    if action.status == "approved":
        return f"{said} The business's policy approved it; it will be carried out shortly."
    return f"{said} It awaits the business's approval."


class ProposingTool(AdsTool):
    # A payload its action kind refuses (a bad slug, say) is answered like a refused argument.
    what = "proposal"

    def propose(
        self,
        kind: ActionKind,
        payload: Payload,
        summary: str,
        impact: dict[str, Any] | None = None,
    ) -> str:
        return propose(
            self.context, tool=self.name, kind=kind, payload=payload, summary=summary, impact=impact
        )


class BudgetChangeArgs(BaseModel):
    channel: Channel
    campaign_id: str = Field(max_length=100, description="From ad_campaigns.")
    daily_budget: Decimal = Field(
        gt=0, description="The new daily budget, in the account's currency."
    )
    reason: str = REASON


class ProposeBudgetChangeTool(ProposingTool):
    name: str = "propose_budget_change"
    description: str = (
        "Proposes a new daily budget for one campaign (Google Ads, Meta or LinkedIn). The change "
        "happens only once approved."
    )
    args_schema: type[BaseModel] = BudgetChangeArgs

    def answer(self, **args: Any) -> str:
        a = BudgetChangeArgs(**args)
        campaign = next((c for c in self.campaigns(a.channel) if c.id == a.campaign_id), None)
        if campaign is None:
            raise ToolFailure(f"There is no campaign {a.campaign_id} on {a.channel.value}.")
        currency = campaign.currency
        if currency is None:
            # A guess would let a policy judge an amount in the wrong currency.
            platform = CHANNEL_NAMES[a.channel]
            raise ToolFailure(
                f"{platform} did not say which currency campaign {campaign.id} is budgeted in, "
                "so its budget can't be changed through a proposal: ask the user to change it "
                f"in {platform} directly."
            )
        payload = BudgetChange(
            channel=a.channel,
            campaign_id=campaign.id,
            budget_id=campaign.budget_id,
            daily_budget=a.daily_budget,
            previous_daily_budget=campaign.daily_budget,
            currency=currency,
        )
        before = f"from {campaign.daily_budget} " if campaign.daily_budget is not None else ""
        summary = (
            f"Change the daily budget of {CHANNEL_NAMES[a.channel]} campaign "
            f"'{campaign.name}' ({campaign.id}) {before}to {a.daily_budget} {currency}: {a.reason}"
        )
        change = a.daily_budget - (campaign.daily_budget or Decimal(0))
        impact = {"amount": str(change), "currency": currency, "per": "day"}
        return self.propose(ActionKind.budget_change, payload, summary, impact)


class CampaignStatusArgs(BaseModel):
    channel: Channel
    campaign_id: str = Field(max_length=100, description="From ad_campaigns.")
    status: Literal["PAUSED", "ACTIVE"] = Field(description="PAUSED to pause, ACTIVE to resume.")
    reason: str = REASON


class ProposeCampaignStatusTool(ProposingTool):
    name: str = "propose_campaign_status"
    description: str = "Proposes pausing or resuming one ad campaign; it happens once approved."
    args_schema: type[BaseModel] = CampaignStatusArgs

    def answer(self, **args: Any) -> str:
        a = CampaignStatusArgs(**args)
        campaign = next((c for c in self.campaigns(a.channel) if c.id == a.campaign_id), None)
        if campaign is None:
            raise ToolFailure(f"There is no campaign {a.campaign_id} on {a.channel.value}.")
        verb = "Pause" if a.status == "PAUSED" else "Resume"
        payload = CampaignStatus(channel=a.channel, campaign_id=campaign.id, status=a.status)
        summary = (
            f"{verb} {CHANNEL_NAMES[a.channel]} campaign '{campaign.name}' ({campaign.id}): "
            f"{a.reason}"
        )
        return self.propose(ActionKind.campaign_status, payload, summary)


class ProductArgs(BaseModel):
    name: str = Field(min_length=1, max_length=250)
    slug: str = Field(max_length=255, description="Lower-case words joined by hyphens.")
    description: str = Field(default="", max_length=5000, description="The product description.")
    product_type_id: str = Field(description="From shop_catalog(what='product_types').")
    category_id: str = Field(description="From shop_catalog(what='categories').")
    channel_ids: list[str] = Field(min_length=1, description="Channels to list it in (ids).")
    sku: str = Field(min_length=1, max_length=255)
    price: Decimal = Field(gt=0, description="Selling price in the channel's currency.")
    cost_price: Decimal | None = Field(default=None, ge=0)
    warehouse_id: str = Field(description="From shop_catalog(what='warehouses').")
    quantity: int = Field(ge=0, description="Units in stock at that warehouse.")
    attributes: dict[str, str | list[str]] = Field(
        default_factory=dict,
        max_length=30,
        description='The variant\'s attribute values by attribute name, e.g. {"Size": "M"}: '
        "the product type's variant_attributes in shop_catalog(what='product_types') say which "
        "are required and which choices they offer.",
    )
    reason: str = REASON


class ProposeProductTool(ProposingTool):
    name: str = "propose_product"
    description: str = (
        "Proposes a new shop product as one change: the product with its description, its "
        "channel listings, one variant (SKU) with its attribute values, price and stock in a "
        "warehouse. Checked against the product type's required attributes first."
    )
    args_schema: type[BaseModel] = ProductArgs

    def answer(self, **args: Any) -> str:
        # The payload's own checks first (a slug's shape, say), then the product type's.
        draft = ProductCreate(
            **{k: v for k, v in args.items() if k not in ("reason", "attributes")}
        )
        a = ProductArgs(**args)
        ids = [(a.product_type_id, "ProductType"), (a.category_id, "Category"),
               (a.warehouse_id, "Warehouse"), *((c, "Channel") for c in a.channel_ids)]  # fmt: skip

        shop_ids(*ids)

        async def variant_attributes(secret: dict[str, Any]) -> list[dict[str, Any]]:
            client = SaleorClient(http=self.connectors.http, secret=secret)
            product_type = await client.get_product_type(a.product_type_id)
            if product_type is None:
                raise ConnectorRequestError(
                    Provider.saleor, f"there is no product type {a.product_type_id}"
                )
            return fill_variant_attributes(product_type, a.attributes)

        filled = self.call(Provider.saleor, variant_attributes)
        payload = draft.model_copy(
            update={"variant_attributes": [VariantAttribute(**f) for f in filled]}
        )
        values = "".join(f", {f['name']} {'/'.join(f['values'])}" for f in filled)
        summary = (
            f"Create product '{payload.name}' (SKU {payload.sku}{values}) at {payload.price}, "
            f"{payload.quantity} in stock, in {len(payload.channel_ids)} channel(s): {a.reason}"
        )
        return self.propose(ActionKind.product_create, payload, summary)


class StockArgs(BaseModel):
    variant_id: str = Field(description="The variant's id, from shop_products.")
    warehouse_id: str = Field(description="The warehouse's id.")
    quantity: int = Field(ge=0, description="The new stock level (absolute, not a difference).")
    reason: str = REASON


class ProposeStockUpdateTool(ProposingTool):
    name: str = "propose_stock_update"
    description: str = "Proposes setting one variant's stock level in one warehouse."
    args_schema: type[BaseModel] = StockArgs

    def answer(self, **args: Any) -> str:
        reason = args.pop("reason", "")
        payload = StockUpdate(**args)
        shop_ids((payload.variant_id, "ProductVariant"), (payload.warehouse_id, "Warehouse"))
        summary = (
            f"Set the stock of variant {payload.variant_id} in warehouse {payload.warehouse_id} "
            f"to {payload.quantity}: {reason}"
        )
        return self.propose(ActionKind.stock_update, payload, summary)


class VoucherArgs(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    code: str = Field(description="3 to 40 letters, digits, - or _.")
    discount_value_type: Literal["PERCENTAGE", "FIXED"]
    discount_value: Decimal = Field(gt=0)
    channel_id: str = Field(description="The channel's id, from shop_catalog.")
    usage_limit: int | None = Field(default=None, ge=1)
    min_amount_spent: Decimal | None = Field(default=None, ge=0)
    reason: str = REASON


class ProposeVoucherTool(ProposingTool):
    name: str = "propose_voucher"
    description: str = "Proposes a new discount voucher code in one channel."
    args_schema: type[BaseModel] = VoucherArgs

    def answer(self, **args: Any) -> str:
        reason = args.pop("reason", "")
        payload = VoucherCreate(**args)
        shop_ids((payload.channel_id, "Channel"))
        unit = "%" if payload.discount_value_type == "PERCENTAGE" else " off"
        summary = f"Create voucher {payload.code} ({payload.discount_value}{unit}): {reason}"
        return self.propose(ActionKind.voucher_create, payload, summary)


class OrderNoteArgs(BaseModel):
    order_id: str = Field(description="The order's id, from shop_orders.")
    message: str = Field(min_length=1, max_length=2000, description="The note for the staff.")
    reason: str = REASON


class ProposeOrderNoteTool(ProposingTool):
    name: str = "propose_order_note"
    description: str = "Proposes adding a note for the shop's staff to one order."
    args_schema: type[BaseModel] = OrderNoteArgs

    def answer(self, **args: Any) -> str:
        reason = args.pop("reason", "")
        payload = OrderNote(**args)
        shop_ids((payload.order_id, "Order"))
        summary = f'Add a note to order {payload.order_id}: "{payload.message[:120]}" ({reason})'
        return self.propose(ActionKind.order_note, payload, summary)
