"""Liveness, readiness, metrics, and what the dashboards show."""

from __future__ import annotations

from datetime import date
from typing import Any

from opshub.client.calls.base import Call, call, text
from opshub.panels.schemas import ActivityPanel, AgentsPanel, UsagePanel


def healthz() -> Call[dict[str, str]]:
    return call("GET", "/healthz", dict[str, str])


def readyz() -> Call[dict[str, Any]]:
    """``{"status": "ready", "checks": {...}}``; a hub that is not ready answers 503."""
    return call("GET", "/readyz", dict[str, Any])


def metrics() -> Call[str]:
    """The Prometheus exposition text."""
    return text("GET", "/metrics")


def agents_panel() -> Call[AgentsPanel]:
    return call("GET", "/v1/panels/agents", AgentsPanel)


def usage_panel(
    *, start: date | None = None, end: date | None = None, group_by: str = "day"
) -> Call[UsagePanel]:
    params = {"from": start, "to": end, "group_by": group_by}
    return call("GET", "/v1/panels/usage", UsagePanel, params=params)


def activity_panel() -> Call[ActivityPanel]:
    return call("GET", "/v1/panels/activity", ActivityPanel)
