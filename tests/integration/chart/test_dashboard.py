"""The Grafana dashboard queries only metrics the operator exports (``spot_operator.metrics``), by their
labels, and the chart ships it unchanged."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from prometheus_client import Counter, Gauge, Histogram, Info

from spot_operator import metrics
from tests.integration.chart.support import CHART, Render, load_json, one

DASHBOARD_PATH = CHART / "dashboards" / "spot-optimizer.json"
DASHBOARD = load_json(DASHBOARD_PATH)
METRIC_RE = re.compile(r"\bspot_optimizer_[a-z0-9_]+")

# What the dashboard must show (DESIGN §9 and the chart's brief).
REQUIRED = {
    "spot_optimizer_switch_total",  # switches by reason and result
    "spot_optimizer_failover_duration_seconds",  # failover p50/p95/p99
    "spot_optimizer_notice_received_total",  # notices by type and source
    "spot_optimizer_savings_hourly_usd",
    "spot_optimizer_savings_to_date_usd",
    "spot_optimizer_price_pool_usd",
    "spot_optimizer_reconcile_duration_seconds",
    "spot_optimizer_aws_calls_total",
    "spot_optimizer_aws_errors_total",
    "spot_optimizer_prices_interpolated_ratio",
    "spot_optimizer_model_active",
}


def exported() -> dict[str, tuple[str, set[str]]]:
    """Every series name the operator exposes -> (the metric's declared name, its label names)."""
    out: dict[str, tuple[str, set[str]]] = {}
    for value in vars(metrics).values():
        if not isinstance(value, Counter | Gauge | Histogram | Info):
            continue
        name, labels = value._name, set(value._labelnames)
        if isinstance(value, Counter):
            declared = f"{name}_total"
            series = {f"{name}_total": labels, f"{name}_created": labels}
        elif isinstance(value, Histogram):
            declared = name
            series = {f"{name}_{s}": labels | {"le"} for s in ("bucket", "sum", "count", "created")}
        elif isinstance(value, Info):
            declared = name
            series = {f"{name}_info": {"name", "version"}}  # Info labels are the values it is given
        else:
            declared, series = name, {name: labels}
        for series_name, series_labels in series.items():
            out[series_name] = (declared, series_labels)
    return out


EXPORTED = exported()


def targets() -> list[tuple[str, dict[str, Any]]]:
    return [
        (panel["title"], target)
        for panel in DASHBOARD["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def test_dashboard_model() -> None:
    assert DASHBOARD["uid"] == "spot-optimizer"
    assert DASHBOARD["title"]
    assert DASHBOARD["schemaVersion"] >= 36
    panels = DASHBOARD["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in DASHBOARD["templating"]["list"]}
    assert "datasource" in variables
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0
        assert grid["x"] + grid["w"] <= 24
        assert grid["h"] > 0
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids))


def test_dashboard_uses_only_exported_metrics() -> None:
    text = DASHBOARD_PATH.read_text()
    used = set(METRIC_RE.findall(text))
    assert used, "the dashboard queries no spot_optimizer_* metric"
    unknown = used - set(EXPORTED)
    assert not unknown, f"not defined in spot_operator/metrics.py: {sorted(unknown)}"


def test_dashboard_shows_every_required_metric() -> None:
    shown = {EXPORTED[name][0] for name in METRIC_RE.findall(DASHBOARD_PATH.read_text())}
    assert shown >= REQUIRED, f"missing panels for: {sorted(REQUIRED - shown)}"


def test_failover_quantiles() -> None:
    exprs = [t["expr"] for _, t in targets() if "failover_duration_seconds_bucket" in t["expr"]]
    quantiles = {m for e in exprs for m in re.findall(r"histogram_quantile\((0\.\d+)", e)}
    assert {"0.5", "0.95", "0.99"} <= quantiles


@pytest.mark.parametrize(("title", "target"), targets(), ids=[f"{t}-{x['refId']}" for t, x in targets()])
def test_queries_group_and_label_by_labels_the_metrics_have(title: str, target: dict[str, Any]) -> None:
    expr = target["expr"]
    assert expr.count("(") == expr.count(")")
    assert expr.count("{") == expr.count("}")
    names = METRIC_RE.findall(expr)
    assert names, f"{title}: no spot_optimizer_* metric in {expr}"
    labels = set().union(*(EXPORTED[n][1] for n in names))
    grouped = {lab.strip() for group in re.findall(r"\bby \(([^)]*)\)", expr) for lab in group.split(",")}
    assert grouped <= labels, f"{title}: grouped by {sorted(grouped - labels)}, which {names} do not have"
    matched = set(re.findall(r"([a-z_]+)=~?\"", expr))
    assert matched <= labels, f"{title}: filters on {sorted(matched - labels)}"
    legend = set(re.findall(r"\{\{(\w+)\}\}", target.get("legendFormat", "")))
    assert legend <= labels, f"{title}: legend uses {sorted(legend - labels)}"


def test_chart_ships_the_dashboard_as_a_grafana_configmap(render: Render) -> None:
    docs = render("monitoring-values.yaml")
    cm = one(docs, "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["namespace"] == "monitoring"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "Spot"}
    assert json.loads(cm["data"]["spot-optimizer.json"]) == DASHBOARD
    assert not [d for d in render() if d["kind"] == "ConfigMap"]  # off by default
