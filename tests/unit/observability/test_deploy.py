"""What ships in deploy/: alert rules Prometheus accepts, on metrics the hub exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from prometheus_client import REGISTRY

import opshub.observability.sampler  # noqa: F401 - registers the pool collector
from opshub.api import middleware  # noqa: F401 - registers the HTTP metrics

DEPLOY = Path(__file__).parents[3] / "deploy"
METRIC = re.compile(r"\bopshub_[a-z_]+")


def _exported() -> set[str]:
    names = set()
    for family in REGISTRY.collect():
        names.update(sample.name for sample in family.samples)
        names.update(family.name + suffix for suffix in ("", "_total", "_bucket", "_count", "_sum"))
    return names


def test_the_alert_rules_pass_promtool() -> None:
    assert shutil.which("promtool"), "promtool missing: scripts/test installs Debian's prometheus"
    checked = subprocess.run(  # noqa: S603 - promtool on our own file
        ["promtool", "check", "rules", str(DEPLOY / "prometheus" / "alerts.yml")],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_alerts_and_dashboard_read_only_metrics_the_hub_exports() -> None:
    import opshub.observability.metrics  # noqa: F401 - the hub's metrics

    exported = _exported()
    alerts = (DEPLOY / "prometheus" / "alerts.yml").read_text()
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "opshub.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = set(METRIC.findall(alerts)) | {m for e in exprs for m in METRIC.findall(e)}
    assert used and used <= exported, used - exported
