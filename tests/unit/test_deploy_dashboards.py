"""deploy/grafana: the provisioned dashboards query only what the services export. Every PromQL expression of every
panel names metrics the three service runtimes register (read from their registries as ``build_runtime`` wires
them, as tests/unit/test_alert_rules.py does) or Prometheus's own ``up``; every label it matches on is one of that
metric or a scrape-target label; every panel uses the provisioned datasource. tests/e2e/test_prometheus_local.py
runs the same expressions against a real Prometheus scraping real services.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy_support import DEPLOY
from tests.unit.test_alert_rules import _exported

GRAFANA = DEPLOY / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
TARGET_LABELS = {"instance", "job", "service"}  # the scrape configs' target labels (deploy/compose, make observe)
PROMETHEUS_METRICS = {"up": set[str]()}  # written by Prometheus for every target
_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "or", "and", "unless", "bool", "offset",
    "sum", "max", "min", "avg", "count", "rate", "increase", "irate", "histogram_quantile", "vector", "label_replace",
    "clamp_min", "abs", "topk", "bottomk", "quantile", "inf", "nan",
}  # fmt: skip


def expressions() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, expr) of every panel target."""
    out = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            out += [(path.name, panel["title"], t["expr"]) for t in panel["targets"]]
    return out


def metric_selectors(expr: str) -> list[tuple[str, set[str]]]:
    """The metric names an expression selects and, for each, the label names it matches on."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings out (label values, label_replace arguments)
    bare = re.sub(r"\[[^\]]*\]", "", bare)  # range selectors
    bare = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", bare)
    found: list[tuple[str, set[str]]] = []
    for name, matchers in re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?", bare):
        if name.lower() in _KEYWORDS or re.fullmatch(r"[0-9.e]+", name):
            continue
        if re.search(rf"\b{re.escape(name)}\s*\(", bare) and not matchers:
            continue  # a function
        found.append((name, set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", matchers or ""))))
    return found


def test_there_are_the_overview_per_service_and_ledger_business_dashboards() -> None:
    uids = {json.loads(p.read_text())["uid"] for p in DASHBOARDS}
    assert uids == {"karya-overview", "karya-orders", "karya-ledger", "karya-gateway", "karya-ledger-business"}
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "karya.yaml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_the_expression_parser_finds_metrics_and_labels() -> None:
    expr = 'sum by (le) (rate(karya_batch_seconds_bucket{consumer="a",le!="1"}[5m])) / on (x) up or vector(0)'
    assert metric_selectors(expr) == [("karya_batch_seconds_bucket", {"consumer", "le"}), ("up", set())]
    assert metric_selectors("max(karya_invented_gauge) by (x)") == [("karya_invented_gauge", set())]


@pytest.mark.parametrize(("dashboard", "title", "expr"), expressions(), ids=lambda v: str(v)[:60])
def test_every_dashboard_query_uses_exported_metrics_and_their_labels(dashboard: str, title: str, expr: str) -> None:
    exported: dict[str, set[str]] = {**_exported(), **PROMETHEUS_METRICS}
    selectors = metric_selectors(expr)
    assert selectors, f"{dashboard} {title}: no metric in {expr}"
    for metric, labels in selectors:
        assert metric in exported, f"{dashboard} {title}: {metric} is not exported by any service"
        assert labels <= exported[metric] | TARGET_LABELS, f"{dashboard} {title}: {metric} has no {labels}"


def test_every_panel_uses_the_provisioned_datasource() -> None:
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    uids = {d["uid"] for d in datasources["datasources"]}
    for path in DASHBOARDS:
        dashboard: dict[str, Any] = json.loads(path.read_text())
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in dashboard["panels"]:
            assert {t["datasource"]["uid"] for t in panel["targets"]} <= uids, (path.name, panel["title"])


def test_dashboard_files_are_named_by_uid() -> None:
    for path in DASHBOARDS:
        assert Path(path).stem == json.loads(path.read_text())["uid"]
