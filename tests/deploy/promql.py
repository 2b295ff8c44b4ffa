"""Which metrics a PromQL expression (a Grafana panel's, an alerting rule's) reads, and which
metrics the running services export, read from real ``/metrics`` scrapes: the API (whose
registry declares every metric of :mod:`shared.metrics`, the workers' included, plus the
scrape-time gauges) and a local engine server (TGI's names)."""

from __future__ import annotations

import re

import httpx
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from services.api.app import create_app
from services.api.settings import ApiSettings
from tests.services.engine.server_fixtures import engine_server

PROMQL_WORDS = {
    "sum", "avg", "min", "max", "count", "by", "without", "rate", "irate", "increase",
    "histogram_quantile", "le", "and", "or", "unless", "on", "ignoring", "group_left",
    "group_right", "offset", "topk", "bottomk", "clamp_min", "clamp_max", "abs", "vector",
    "deriv", "absent",
}  # fmt: skip
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def exported(text: str) -> set[str]:
    names = set()
    for family in text_string_to_metric_families(text):
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
    return names


def queried_metrics(expr: str) -> set[str]:
    """Metric names in a PromQL expression: what is left once selectors, ranges, grouping
    clauses, strings, numbers and PromQL's own words are taken out."""
    expr = re.sub(r"\$\w+", "", expr)  # Grafana variables ($__rate_interval)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\b(?:by|without|on|ignoring)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r'"[^"]*"', " ", expr)
    words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr))
    return {w for w in words if w not in PROMQL_WORDS}


def exported_metrics(database_url: str, redis_url: str) -> set[str]:
    """Every metric name the API and a local engine server export."""
    app = create_app(ApiSettings(database_url=database_url, redis_url=redis_url))
    with TestClient(app) as client:
        api = client.get("/metrics")
    assert api.status_code == 200
    with engine_server("sim", "sim-executor") as url:
        engine = httpx.get(f"{url}/metrics", timeout=10)
    assert engine.status_code == 200
    return exported(api.text) | exported(engine.text)
