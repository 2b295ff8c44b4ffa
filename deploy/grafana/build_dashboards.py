"""Writes the provisioned Grafana dashboards (deploy/grafana/dashboards/*.json).

The JSON files are committed (Grafana reads them as they are); this script is how they are
made and changed, so that every panel has the same datasource, units and layout rules:
``python deploy/grafana/build_dashboards.py``. tests/deploy checks that every metric a panel
queries is one the services export.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
WIDTH = 24


def panel(
    title: str,
    exprs: dict[str, str],
    *,
    unit: str = "short",
    kind: str = "timeseries",
    width: int = 12,
    description: str = "",
) -> dict[str, Any]:
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "right"}},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "expr": expr,
                "legendFormat": legend,
                "datasource": DATASOURCE,
            }
            for i, (legend, expr) in enumerate(exprs.items())
        ],
        "gridPos": {"w": width, "h": 8},
    }


def row(title: str) -> dict[str, Any]:
    return {
        "type": "row",
        "title": title,
        "collapsed": False,
        "panels": [],
        "gridPos": {"w": WIDTH, "h": 1},
    }


def rate(metric: str, by: str, selector: str = "") -> str:
    return f"sum by ({by}) (rate({metric}{selector}[$__rate_interval]))"


def p95(metric: str, by: str) -> str:
    return f"histogram_quantile(0.95, sum by (le, {by}) (rate({metric}_bucket[$__rate_interval])))"


def layout(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Place panels left to right, wrapping at the grid width; rows start a new line."""
    x = y = line = 0
    for i, item in enumerate(panels):
        grid = item["gridPos"]
        if item["type"] == "row" or x + grid["w"] > WIDTH:
            x, y = 0, y + line
            line = 0
        grid.update({"x": x, "y": y})
        item["id"] = i + 1
        x += grid["w"]
        line = max(line, grid["h"])
        if item["type"] == "row":
            x, y, line = 0, y + grid["h"], 0
    return panels


def dashboard(uid: str, title: str, panels: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "tags": ["tandem-serve"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": []},
        "annotations": {"list": []},
        "panels": layout(panels),
    }


RATE = "$__rate_interval"

OVERVIEW = dashboard(
    "tandem-overview",
    "Tandem serve: overview",
    [
        row("Throughput"),
        panel(
            "Jobs submitted / s",
            {"{{policy}} {{domain}}": rate("tandem_jobs_submitted_total", "policy, domain")},
            unit="reqps",
        ),
        panel(
            "Jobs finished / s",
            {"{{status}}": f"sum by (status) (rate(tandem_jobs_finished_total[{RATE}]))"},
            unit="reqps",
        ),
        panel(
            "Queue depth",
            {"{{queue}}": "sum by (queue) (tandem_queue_depth)"},
            description="Messages waiting per Celery queue; a growing line means too few workers.",
        ),
        panel(
            "Admission refusals / s",
            {"{{reason}}": f"sum by (reason) (rate(tandem_admission_rejections_total[{RATE}]))"},
            unit="reqps",
        ),
        panel(
            "Submissions admitted in batches / s",
            {"{{outcome}}": (f"sum by (outcome) (rate(tandem_admission_batch_size_sum[{RATE}]))")},
            unit="reqps",
            description="One tenant's submissions that waited for its budget's lane: admitted "
            "together in one statement, sent back to be admitted one by one (alone), or "
            "answered 503 (failed). The rest were admitted by a statement of their own.",
        ),
        row("Latency"),
        panel(
            "Pipeline step p95", {"{{task}}": p95("tandem_task_duration_seconds", "task")}, unit="s"
        ),
        panel(
            "Engine call p95",
            {"{{role}} {{model}}": p95("tandem_engine_request_duration_seconds", "role, model")},
            unit="s",
        ),
        panel(
            "API request p95",
            {"{{route}}": p95("tandem_http_request_duration_seconds", "route")},
            unit="s",
        ),
        panel(
            "Engine server request p95 (TGI)",
            {"{{instance}}": p95("tgi_request_duration", "instance")},
            unit="s",
        ),
        row("Errors"),
        panel(
            "Failed jobs / s",
            {"failed": f'sum(rate(tandem_jobs_finished_total{{status="failed"}}[{RATE}]))'},
            unit="reqps",
        ),
        panel(
            "Engine errors / s",
            {"{{role}} {{error}}": rate("tandem_engine_errors_total", "role, error")},
            unit="reqps",
        ),
        panel(
            "API 5xx / s",
            {
                "{{route}}": "sum by (route) (rate(tandem_http_request_duration_seconds_count"
                f'{{status=~"5.."}}[{RATE}]))'
            },
            unit="reqps",
        ),
        panel(
            "Pipeline step errors / s",
            {"{{task}}": rate("tandem_task_duration_seconds_count", "task", '{outcome="error"}')},
            unit="reqps",
        ),
        panel(
            "Expired messages / s",
            {"{{task}}": rate("tandem_messages_expired_total", "task")},
            unit="reqps",
            description="Messages dropped unstarted past TANDEM_TASK_EXPIRES_S: a backlog longer "
            "than the expiry. A step its job still waited for is sent again, so none is lost.",
        ),
        panel(
            "Sweeper actions / s",
            {"{{action}}": rate("tandem_swept_jobs_total", "action")},
            unit="reqps",
            description="Stale jobs the sweeper sent again (reannounced), failed as stuck "
            "(failed) or sent to settlement again (resettled).",
        ),
    ],
)

SPEND = dashboard(
    "tandem-spend",
    "Tandem serve: spend, tokens and savings",
    [
        row("Spend"),
        panel(
            "Spend per hour by model and role",
            {
                "{{role}} {{model}}": (
                    "sum by (role, model) (increase(tandem_cost_dollars_total[1h]))"
                )
            },
            unit="currencyUSD",
        ),
        panel(
            "Money reserved, settled and released per hour",
            {
                "reserved": "sum(increase(tandem_reserved_dollars_total[1h]))",
                "settled": "sum(increase(tandem_settled_dollars_total[1h]))",
                "released": "sum(increase(tandem_released_dollars_total[1h]))",
            },
            unit="currencyUSD",
            description="Reserved minus settled minus released is what running jobs still hold.",
        ),
        panel(
            "Tokens / s by model, role and kind",
            {"{{role}} {{model}} {{kind}}": rate("tandem_tokens_total", "role, model, kind")},
        ),
        panel(
            "FLOPs / s by model",
            {"{{model}}": f"sum by (model) (rate(tandem_flops_total[{RATE}]))"},
        ),
        row("Savings"),
        panel(
            "Tandem cost as a share of coordinator alone (this month)",
            {"{{domain}} ({{method}})": "tandem_savings_cost_share"},
            unit="percentunit",
            description="From the savings report (GET /v1/reports/savings): the method says "
            "whether the counterfactual is measured by shadow runs, llm_only jobs or the "
            "offline table.",
        ),
        panel(
            "Jobs behind the savings figure",
            {"{{domain}} ({{method}})": "tandem_savings_sample_size"},
            description="Sample size of the counterfactual estimate.",
        ),
        panel(
            "Tandem jobs measured by a shadow run (this month)",
            {"{{domain}}": "tandem_savings_shadow_share"},
            unit="percentunit",
            description="Share of succeeded tandem jobs answered again by the coordinator "
            "alone on the operator's account (TANDEM_SHADOW_FRACTION).",
        ),
    ],
)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for board in (OVERVIEW, SPEND):
        path = OUT / f"{board['uid']}.json"
        path.write_text(json.dumps(board, indent=2) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
