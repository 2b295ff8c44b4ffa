"""Every metric a provisioned Grafana panel queries is one the running services export
(:mod:`tests.deploy.promql`). A renamed metric or a typo in a panel fails here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.deploy.promql import exported_metrics, queried_metrics
from tests.deploy.test_observability import DASHBOARDS


def panel_queries() -> Iterator[tuple[str, str, str]]:
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                yield path.name, panel["title"], target["expr"]


@pytest.fixture(scope="module")
def exported_names(database_url: str, redis_url: str) -> set[str]:
    return exported_metrics(database_url, redis_url)


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
