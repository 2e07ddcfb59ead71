"""Usage: charts of cost, runs and work time over the last 30 days, each with its table."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from opshub.console.deps import PageDep
from opshub.console.render import page
from opshub.panels import service as panels_service
from opshub.panels.schemas import TrendsPanel

router = APIRouter(prefix="/console/usage")

# The order outcomes stack in, bottom first (what ended, then what is still open), and the
# stylesheet colour each is drawn in.
OUTCOMES = {
    "succeeded": "--ok",
    "failed": "--bad",
    "cancelled": "--muted",
    "awaiting_approval": "--warn",
    "running": "--info",
    "queued": "--c5",
}


@router.get("", response_class=HTMLResponse, include_in_schema=False)
async def usage(request: Request, ctx: PageDep) -> HTMLResponse:
    trends = await panels_service.trends(
        ctx.conn, tenant_id=ctx.principal.tenant_id, start=None, end=None, tz=ctx.tz
    )
    return page(request, "usage.html", ctx, trends=trends, **chart_tables(trends))


def chart_tables(trends: TrendsPanel) -> dict[str, Any]:
    """The same figures as the tables under each chart and as the charts' data (floats only to
    draw with; the tables print the exact decimals)."""
    days = [day.isoformat() for day in trends.days]
    crews = sorted({row.crew for row in trends.cost})
    cost: dict[str, dict[str, dict[str, Decimal]]] = {
        billed: defaultdict(lambda: defaultdict(Decimal)) for billed in ("byok", "platform")
    }
    for row in trends.cost:
        cost["byok"][row.crew][row.day.isoformat()] += row.byok_usd
        cost["platform"][row.crew][row.day.isoformat()] += row.platform_usd
    runs: dict[str, dict[str, int]] = defaultdict(dict)
    for item in trends.runs:
        runs[item.status.value][item.day.isoformat()] = item.runs
    outcomes = [name for name in OUTCOMES if name in runs]
    spent_days = {
        billed: [day for day in days if any(cost[billed][crew][day] for crew in crews)]
        for billed in cost
    }
    run_days = [day for day in days if any(day in runs[name] for name in outcomes)]
    chart_data = {
        "days": days,
        "cost": {
            billed: [
                {"label": crew, "values": [float(cost[billed][crew][day]) for day in days]}
                for crew in crews
            ]
            for billed in cost
        },
        "budget": {
            "monthly": float(trends.budget_usd) if trends.budget_usd is not None else None,
            "spent": float(trends.platform_spent_this_month_usd),
        },
        "runs": [
            {
                "label": name.replace("_", " "),
                "color": OUTCOMES[name],
                "values": [runs[name].get(day, 0) for day in days],
            }
            for name in outcomes
        ],
        "durations": [
            {"label": row.crew, "value": row.p50_duration_seconds} for row in trends.durations
        ],
    }
    return {
        "chart_data": chart_data,
        "crews": crews,
        "cost": cost,
        "spent_days": spent_days,
        "outcomes": outcomes,
        "runs_by_outcome": runs,
        "run_days": run_days,
    }
