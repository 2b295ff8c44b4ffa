"""Prometheus and Grafana wiring of the compose deployment: every metrics endpoint the system
serves is scraped, and Grafana is provisioned with that Prometheus and the repository's
dashboards."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from tests.deploy.support import ROOT
from tests.deploy.test_compose import aliases, environment, listen_ports, services

PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"


def scrape_targets() -> dict[str, set[str]]:
    config = yaml.safe_load(PROMETHEUS.read_text())
    out: dict[str, set[str]] = {}
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            out.setdefault(job["job_name"], set()).update(static["targets"])
    return out


def duration_s(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    match = re.fullmatch(r"(\d+)(ms|s|m|h)", text)
    assert match, text
    return int(match.group(1)) * units[match.group(2)]


def mount_target(service: dict[str, Any], source: str) -> str:
    for volume in service.get("volumes", []):
        parts = str(volume).split(":")
        if Path(parts[0]).resolve() == (ROOT / source).resolve():
            return parts[1]
    raise AssertionError(f"{source} is not mounted")


def test_prometheus_config_is_well_formed() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    names = [job["job_name"] for job in config["scrape_configs"]]
    assert len(names) == len(set(names)), "duplicate job names"
    interval = duration_s(config["global"]["scrape_interval"])
    assert duration_s(config["global"]["scrape_timeout"]) <= interval
    for job in config["scrape_configs"]:
        assert job.get("metrics_path", "/metrics").startswith("/")
        for static in job["static_configs"]:
            for target in static["targets"]:
                assert re.fullmatch(r"[a-z0-9.-]+:\d+", target), target


def test_every_metrics_endpoint_is_scraped() -> None:
    targets = {t for ts in scrape_targets().values() for t in ts}
    expected = set()
    for name, svc in services().items():
        env = environment(svc)
        if env.get("TANDEM_METRICS_PORT") not in (None, "", "0"):
            expected.add(f"{name}:{env['TANDEM_METRICS_PORT']}")
        if name == "api":
            expected.add(f"api:{next(iter(listen_ports(svc)))}")
    for alias in ("coordinator-engine", "executor-engine"):
        provider = next(s for n, s in services().items() if alias in aliases(n, s))
        expected.add(f"{alias}:{next(iter(listen_ports(provider)))}")
    missing = expected - targets
    assert not missing, f"not scraped: {sorted(missing)}"
    assert any(t.startswith("api:") for t in targets)


def test_prometheus_mounts_this_config() -> None:
    prometheus = services()["prometheus"]
    target = mount_target(prometheus, "deploy/prometheus/prometheus.yml")
    assert f"--config.file={target}" in prometheus["command"]


def test_grafana_is_provisioned_from_the_repository() -> None:
    grafana = services()["grafana"]
    assert mount_target(grafana, "deploy/grafana/provisioning") == "/etc/grafana/provisioning"
    dashboards_dir = mount_target(grafana, "deploy/grafana/dashboards")
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "tandem.yml").read_text())
    assert providers["apiVersion"] == 1
    paths = [p["options"]["path"] for p in providers["providers"] if p["type"] == "file"]
    assert paths == [dashboards_dir], "the provider must read the mounted dashboards"


def provisioned_datasources() -> list[dict[str, Any]]:
    config = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    assert config["apiVersion"] == 1
    return list(config["datasources"])


def test_grafana_datasource_is_the_compose_prometheus() -> None:
    (source,) = provisioned_datasources()
    assert source["type"] == "prometheus" and source["uid"]
    url = urlsplit(source["url"])
    prometheus = services()["prometheus"]
    assert url.hostname in aliases("prometheus", prometheus)
    assert url.port in listen_ports(prometheus)


def datasource_refs(value: Any) -> list[Any]:
    if isinstance(value, dict):
        found = [value["datasource"]] if "datasource" in value else []
        return found + [r for v in value.values() for r in datasource_refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in datasource_refs(v)]
    return []


def test_dashboards_use_the_provisioned_datasource() -> None:
    """Dashboards (their content is the observability work's) must name a datasource that
    exists here, by uid, or through a dashboard variable."""
    uids = {s["uid"] for s in provisioned_datasources()}
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        for ref in datasource_refs(dashboard):
            uid = ref.get("uid") if isinstance(ref, dict) else ref
            if uid is None or str(uid).startswith("$") or uid in {"-- Grafana --", "grafana"}:
                continue
            assert uid in uids, f"{path.name}: datasource {uid!r} is not provisioned"
