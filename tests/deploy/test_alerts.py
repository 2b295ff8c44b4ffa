"""The alerting rules: valid for Prometheus, each firing on the series it is for and quiet on
the ones it must ignore (promtool's unit tests in ``alerts_test.yml``), reading only metrics
the services export, and loaded by the Compose deployment's Prometheus. (The chart's
PrometheusRule: ``test_helm_chart``.)"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.promql import exported_metrics, queried_metrics
from tests.deploy.support import CHART, COMPOSE_FILE, ROOT

RULES = CHART / "files" / "alerts.yml"
UNIT_TESTS = Path(__file__).with_name("alerts_test.yml")
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
MOUNTED_AT = "/etc/prometheus/alerts.yml"


def alerting_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(
            "the alerting rules' tests need promtool, from Debian's prometheus package: run "
            "scripts/bootstrap as root (or apt-get install prometheus)"
        )
    return found


def run(*argv: str | Path) -> None:
    done = subprocess.run([*map(str, argv)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_prometheus_accepts_the_rules(promtool: str) -> None:
    run(promtool, "check", "rules", RULES)


def test_each_rule_fires_and_stays_quiet_as_its_unit_tests_say(promtool: str) -> None:
    run(promtool, "test", "rules", UNIT_TESTS)


def test_each_rule_has_a_case_that_fires_it_and_one_that_must_not() -> None:
    tests = yaml.safe_load(UNIT_TESTS.read_text())["tests"]
    fired = {
        name
        for test in tests
        for case in test.get("promql_expr_test", [])
        for sample in case["exp_samples"]
        for name in re.findall(r'alertname="(\w+)", alertstate="firing"', sample["labels"])
    }
    quiet = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case["exp_alerts"] == []
    }
    names = {rule["alert"] for rule in alerting_rules()}
    assert names - fired == set(), "rules no test fires"
    # A rule's quiet case may instead be series beside the firing ones that it must ignore.
    beside = {"TandemBrokerDown", "TandemEngineErrorRatio", "TandemSweeperStalled"}
    assert names - quiet - beside == set(), "rules no test keeps quiet"


def test_each_rule_says_how_bad_and_what_to_do() -> None:
    for rule in alerting_rules():
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_each_metric_a_rule_reads_is_exported(database_url: str, redis_url: str) -> None:
    exported = exported_metrics(database_url, redis_url)
    missing = {
        (rule["alert"], metric)
        for rule in alerting_rules()
        for metric in queried_metrics(rule["expr"])
        if metric not in exported
    }
    assert not missing, sorted(missing)


def test_the_compose_prometheus_loads_the_rules(promtool: str, tmp_path: Path) -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    assert config["rule_files"] == [MOUNTED_AT]
    prometheus = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["prometheus"]
    mount = f"./{RULES.relative_to(ROOT)}:{MOUNTED_AT}:ro"
    assert mount in prometheus["volumes"]
    # The whole configuration, with the rules where the container finds them.
    config["rule_files"] = [str(RULES)]
    checked = tmp_path / "prometheus.yml"
    checked.write_text(yaml.safe_dump(config))
    run(promtool, "check", "config", checked)
