"""Every metric a provisioned Grafana panel queries is one the running services export.

The exported names are read from real ``/metrics`` scrapes: the API (whose registry declares
every metric of :mod:`shared.metrics`, the workers' included, plus the scrape-time gauges) and
a local engine server (TGI's names). A renamed metric or a typo in a panel fails here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from services.api.app import create_app
from services.api.settings import ApiSettings
from tests.deploy.test_observability import DASHBOARDS
from tests.services.engine.server_fixtures import engine_server

PROMQL_WORDS = {
    "sum", "avg", "min", "max", "count", "by", "without", "rate", "irate", "increase",
    "histogram_quantile", "le", "and", "or", "unless", "on", "ignoring", "group_left",
    "group_right", "offset", "topk", "bottomk", "clamp_min", "clamp_max", "abs", "vector",
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


def panel_queries() -> Iterator[tuple[str, str, str]]:
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                yield path.name, panel["title"], target["expr"]


@pytest.fixture(scope="module")
def exported_names(database_url: str, redis_url: str) -> set[str]:
    app = create_app(ApiSettings(database_url=database_url, redis_url=redis_url))
    with TestClient(app) as client:
        api = client.get("/metrics")
    assert api.status_code == 200
    with engine_server("sim", "sim-executor") as url:
        engine = httpx.get(f"{url}/metrics", timeout=10)
    assert engine.status_code == 200
    return exported(api.text) | exported(engine.text)


def test_dashboards_exist_and_query_something() -> None:
    queries = list(panel_queries())
    assert {name for name, _, _ in queries} >= {"tandem-overview.json", "tandem-spend.json"}
    assert all(queried_metrics(expr) for _, _, expr in queries)


def test_every_queried_metric_is_exported(exported_names: set[str]) -> None:
    missing = {
        (name, title, metric)
        for name, title, expr in panel_queries()
        for metric in queried_metrics(expr)
        if metric not in exported_names
    }
    assert not missing, sorted(missing)


def test_the_parser_sees_what_a_panel_queries() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, route) (rate(tandem_http_request_duration_seconds"
        '_bucket{status=~"5.."}[$__rate_interval]))) / ignoring(route) tandem_queue_depth'
    )
    assert queried_metrics(expr) == {
        "tandem_http_request_duration_seconds_bucket",
        "tandem_queue_depth",
    }
