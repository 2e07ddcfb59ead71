"""Every tool a crew's YAML can name, built for one run of one tenant."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from crewai.tools import BaseTool

from opshub.memory.run_memory import TenantMemory
from opshub.memory.service import MemoryFilter
from opshub.tools import actions, ads, amazon, operations, reports, saleor
from opshub.tools.context import ToolContext
from opshub.tools.memory import SaveMemoryTool, SearchMemoryTool
from opshub.tools.tenant_data import TenantDataTool


@dataclass(frozen=True)
class RunTools:
    context: ToolContext
    memory: TenantMemory
    recall_from: MemoryFilter
    author: str = "opshub"  # who saved reports are by: the crew


MAKERS: dict[str, Callable[[RunTools], BaseTool]] = {
    "tenant_data": lambda r: TenantDataTool(context=r.context),
    "save_report": lambda r: reports.SaveReportTool(context=r.context, author=r.author),
    "search_memory": lambda r: SearchMemoryTool(
        context=r.context, memory=r.memory, scopes_filter=r.recall_from
    ),
    "save_memory": lambda r: SaveMemoryTool(context=r.context, memory=r.memory),
    "shop_products": lambda r: saleor.ShopProductsTool(context=r.context),
    "shop_catalog": lambda r: saleor.ShopCatalogTool(context=r.context),
    "shop_orders": lambda r: saleor.ShopOrdersTool(context=r.context),
    "shop_customers": lambda r: saleor.ShopCustomersTool(context=r.context),
    "shop_vouchers": lambda r: saleor.ShopVouchersTool(context=r.context),
    "shop_stock": lambda r: saleor.ShopStockTool(context=r.context),
    "ad_performance": lambda r: ads.AdPerformanceTool(context=r.context),
    "ad_campaigns": lambda r: ads.AdCampaignsTool(context=r.context),
    "amazon_product_search": lambda r: amazon.AmazonProductSearchTool(context=r.context),
    "connection_health": lambda r: operations.ConnectionHealthTool(context=r.context),
    "failed_runs": lambda r: operations.FailedRunsTool(context=r.context),
    "propose_budget_change": lambda r: actions.ProposeBudgetChangeTool(context=r.context),
    "propose_campaign_status": lambda r: actions.ProposeCampaignStatusTool(context=r.context),
    "propose_product": lambda r: actions.ProposeProductTool(context=r.context),
    "propose_stock_update": lambda r: actions.ProposeStockUpdateTool(context=r.context),
    "propose_voucher": lambda r: actions.ProposeVoucherTool(context=r.context),
    "propose_order_note": lambda r: actions.ProposeOrderNoteTool(context=r.context),
}


def build_tools(names: Iterable[str], run: RunTools) -> dict[str, BaseTool]:
    """One instance per name for the run (agents of a crew share them)."""
    return {name: MAKERS[name](run) for name in dict.fromkeys(names)}
