"""One executor per action kind; each turns an approved payload into the service call."""

from __future__ import annotations

from opshub.actions.execution import Executor
from opshub.actions.executors.ads import change_budget, set_campaign_status
from opshub.actions.executors.mcp import call_mcp_tool
from opshub.actions.executors.saleor import (
    add_order_note,
    create_product,
    create_voucher,
    update_stock,
)
from opshub.actions.kinds import ActionKind

EXECUTORS: dict[ActionKind, Executor] = {
    ActionKind.product_create: create_product,
    ActionKind.stock_update: update_stock,
    ActionKind.voucher_create: create_voucher,
    ActionKind.order_note: add_order_note,
    ActionKind.budget_change: change_budget,
    ActionKind.campaign_status: set_campaign_status,
    ActionKind.mcp_tool_call: call_mcp_tool,
}
