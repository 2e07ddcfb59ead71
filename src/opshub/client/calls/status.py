"""Liveness, readiness, metrics, and what the dashboards show."""

from __future__ import annotations

from datetime import date
from typing import Any

from opshub.client.calls.base import Call, call, text
from opshub.panels.schemas import ActivityPanel, AgentsPanel, TrendsPanel, UsagePanel


def healthz() -> Call[dict[str, str]]:
    return call("GET", "/healthz", dict[str, str])


def readyz() -> Call[dict[str, Any]]:
    """``{"status": "ready", "checks": {...}}``; a hub that is not ready answers 503."""
    return call("GET", "/readyz", dict[str, Any])


def metrics() -> Call[str]:
    """The Prometheus exposition text."""
    return text("GET", "/metrics")


def agents_panel(*, tz: str = "UTC") -> Call[AgentsPanel]:
    """Per crew and per agent, "today" in ``tz`` (an IANA zone)."""
    return call("GET", "/v1/panels/agents", AgentsPanel, params={"tz": tz})


def usage_panel(
    *, start: date | None = None, end: date | None = None, group_by: str = "day", tz: str = "UTC"
) -> Call[UsagePanel]:
    params = {"from": start, "to": end, "group_by": group_by, "tz": tz}
    return call("GET", "/v1/panels/usage", UsagePanel, params=params)


def trends_panel(
    *, start: date | None = None, end: date | None = None, tz: str = "UTC"
) -> Call[TrendsPanel]:
    """Cost and runs per day, each crew's median work time: what the console's charts draw."""
    params = {"from": start, "to": end, "tz": tz}
    return call("GET", "/v1/panels/trends", TrendsPanel, params=params)


def activity_panel(
    *, limit: int | None = None, cursor: str | None = None, tz: str = "UTC"
) -> Call[ActivityPanel]:
    params = {"limit": limit, "cursor": cursor, "tz": tz}
    return call("GET", "/v1/panels/activity", ActivityPanel, params=params)
