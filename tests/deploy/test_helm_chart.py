"""The Helm chart, rendered offline by Helm's own engine (the helm-python-sdk wheel bundles it),
linted by Helm and yamllint, validated against the Kubernetes schemas (kubernetes-validate)
and KEDA's resource shapes, and cross-checked against the project: entry points, settings,
queues, probes, budgets and hooks."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from functools import cache
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml
from yamllint import linter
from yamllint.config import YamlLintConfig

from shared.tasks import Queue
from tests.deploy.support import (
    CHART,
    ROOT,
    YAMLLINT_CONFIG,
    Invocation,
    all_process_classes,
    image_target,
    parse_tandem,
    settings_problems,
)

RELEASE = "tandem-serve"
NAMESPACE = "tandem"
KUBE_VERSIONS = ("1.27", kubernetes_validate.latest_version())  # the chart's floor, and newest
KEDA_SCHEMA = json.loads((ROOT / "tests/deploy/schemas/keda-v1alpha1.json").read_text())
CI_VALUES = yaml.safe_load((CHART / "ci" / "test-values.yaml").read_text())

Manifest = dict[str, Any]


def merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


@cache
def rendered_files(overrides: str = "{}") -> dict[str, str]:
    values = merged(CI_VALUES, json.loads(overrides))
    with helm.Chart.load(CHART) as chart:
        return dict(chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True))


def manifests(**overrides: Any) -> list[Manifest]:
    docs: list[Manifest] = []
    for path, text in sorted(rendered_files(json.dumps(overrides, sort_keys=True)).items()):
        if path.endswith(".yaml"):
            docs += [doc for doc in yaml.safe_load_all(text) if doc]
    return docs


def of_kind(docs: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def containers(doc: Manifest) -> list[dict[str, Any]]:
    spec = doc["spec"]["template"]["spec"]
    return list(spec.get("initContainers", [])) + list(spec["containers"])


def workloads(docs: list[Manifest]) -> Iterator[tuple[Manifest, dict[str, Any], Invocation]]:
    for doc in docs:
        if doc["kind"] in {"Deployment", "Job"}:
            for container in containers(doc):
                yield doc, container, parse_tandem(container["command"])


def container_env(docs: list[Manifest], container: dict[str, Any]) -> dict[str, str]:
    """The environment a container gets from its envFrom sources and env entries."""
    configmaps = of_kind(docs, "ConfigMap")
    secrets = of_kind(docs, "Secret")
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env |= configmaps[source["configMapRef"]["name"]]["data"]
        if "secretRef" in source:
            secret = secrets[source["secretRef"]["name"]]
            env |= secret.get("stringData", {})
    for item in container.get("env", []):
        env[item["name"]] = str(item.get("value", ""))
    return env


# ------------------------------------------------------------------------------ lint, schemas


def test_helm_lint_is_clean() -> None:
    report = helm.lint(str(CHART), CI_VALUES, strict=True, kube_version="v1.27.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    assert not problems, problems


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"keda": {"enabled": False}},
        {"api": {"autoscaling": {"enabled": True}}},
        {"existingSecret": "tandem-credentials", "api": {"pdb": {"enabled": False}}},
        {"redis": {"tls": True}, "beat": {"enabled": False}, "migrations": {"enabled": False}},
    ],
    ids=["defaults", "no-keda", "api-hpa", "existing-secret", "tls-no-beat"],
)
def test_every_manifest_is_valid_kubernetes(overrides: dict[str, Any]) -> None:
    docs = manifests(**overrides)
    assert docs
    for doc in docs:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["apiVersion"].startswith("keda.sh/"):
            jsonschema.validate(doc, {**KEDA_SCHEMA, "$ref": f"#/$defs/{doc['kind']}"})
            continue
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{where} is invalid on Kubernetes {version}: {exc.message}")


def test_schema_validation_is_not_vacuous() -> None:
    deployment = next(d for d in manifests() if d["kind"] == "Deployment")
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["periodSecond"] = 3
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBE_VERSIONS[0], strict=True)
    scaled = next(d for d in manifests() if d["kind"] == "ScaledObject")
    broken = copy.deepcopy(scaled)
    broken["spec"]["triggers"][0]["metadata"]["listname"] = "x"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, {**KEDA_SCHEMA, "$ref": "#/$defs/ScaledObject"})


def test_rendered_manifests_and_deploy_files_pass_yamllint() -> None:
    config = YamlLintConfig(file=str(YAMLLINT_CONFIG))
    texts = {f"rendered:{p}": t for p, t in rendered_files().items() if p.endswith(".yaml")}
    for path in [ROOT / "docker-compose.yml", *sorted((ROOT / "deploy").rglob("*.y*ml"))]:
        relative = str(path.relative_to(ROOT))
        if not config.is_file_ignored(relative):
            texts[relative] = path.read_text()
    assert any("values.yaml" in p for p in texts) and any("prometheus" in p for p in texts)
    problems = [
        f"{path}:{p.line}:{p.column} {p.level} {p.desc} ({p.rule})"
        for path, text in texts.items()
        for p in linter.run(text, config)
    ]
    assert not problems, "\n".join(problems)


def test_missing_secrets_fail_the_render_with_a_clear_message() -> None:
    values = merged(CI_VALUES, {"postgres": {"password": ""}})
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmError) as failure:
        chart.render(values, name=RELEASE, namespace=NAMESPACE)
    assert "postgres.password is required" in str(failure.value)


# ------------------------------------------------------------------------------ the system


def test_one_deployment_per_service() -> None:
    deployments = of_kind(manifests(), "Deployment")
    runs = sorted(
        (inv.path, inv.service)
        for doc, _, inv in workloads(manifests())
        if doc["kind"] == "Deployment"
    )
    expected = sorted(
        [(("api", "serve"), None), (("beat",), None)] + [(("worker",), q.value) for q in Queue]
    )
    assert runs == expected
    assert len(deployments) == len(expected)


def test_workloads_run_the_same_commands_and_images_as_compose() -> None:
    from tests.deploy.test_compose import tandem_services

    compose = {(inv.path, inv.service) for _, inv in tandem_services().values()}
    for doc, container, inv in workloads(manifests()):
        assert (inv.path, inv.service) in compose, f"{doc['metadata']['name']} runs {inv.path}"
        tag = container["image"].rsplit(":", 1)[1]
        assert tag.endswith(f"-{image_target(inv)}"), f"{container['image']} for {inv.path}"
        assert not tag.startswith("-") and tag != "latest"


def test_every_workload_gets_the_settings_it_reads() -> None:
    docs = manifests()
    invocations = [inv for _, _, inv in workloads(docs)]
    readers = all_process_classes(invocations)  # one ConfigMap serves every component
    problems = [
        problem
        for _, container, inv in workloads(docs)
        for problem in settings_problems(inv, container_env(docs, container), known_from=readers)
    ]
    assert not problems, "\n".join(problems)


def test_config_values_are_settings() -> None:
    """An operator's `config:` entry that no settings class reads is a typo, and fails."""
    docs = manifests(config={"TANDEM_LOG_LEVL": "DEBUG"})
    _, container, inv = next(w for w in workloads(docs) if w[2].path == ("api", "serve"))
    readers = all_process_classes(i for _, _, i in workloads(docs))
    problems = settings_problems(inv, container_env(docs, container), known_from=readers)
    assert any("TANDEM_LOG_LEVL" in p for p in problems)


def test_every_container_requests_resources_and_runs_locked_down() -> None:
    for doc in manifests():
        if doc["kind"] not in {"Deployment", "Job"}:
            continue
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        for container in containers(doc):
            requests = container["resources"]["requests"]
            assert {"cpu", "memory"} <= set(requests), doc["metadata"]["name"]
            assert "memory" in container["resources"]["limits"]
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert {"/tmp", "/var/lib/tandem"} <= mounts, "a read-only root needs writable dirs"


def test_probes() -> None:
    for _, container, inv in workloads(manifests()):
        if inv.path == ("api", "serve"):
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            assert ports["http"] == int(inv.params["port"])
        if inv.path == ("worker",):
            for probe in ("startupProbe", "livenessProbe"):
                check = parse_tandem(container[probe]["exec"]["command"])
                assert check.path == ("worker-health",)
                assert check.service == inv.service
                assert check.params["local"], "a queue round trip would fail busy workers"
                assert float(check.params["timeout"]) < container[probe]["timeoutSeconds"]


def test_beat_is_a_singleton() -> None:
    beat = next(d for d, _, inv in workloads(manifests()) if inv.path == ("beat",))
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"]["type"] == "Recreate"
    assert not [
        d
        for d in manifests()
        if d["kind"] in {"ScaledObject", "HorizontalPodAutoscaler"}
        and d["spec"]["scaleTargetRef"]["name"] == beat["metadata"]["name"]
    ]


def test_disruption_budgets_select_exactly_their_deployment() -> None:
    docs = manifests()
    deployments = of_kind(docs, "Deployment")
    budgets = of_kind(docs, "PodDisruptionBudget")
    covered = set()
    for name, pdb in budgets.items():
        selector = pdb["spec"]["selector"]["matchLabels"]
        matches = [
            d
            for d, doc in deployments.items()
            if selector.items() <= doc["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matches) == 1, f"PDB {name} selects {matches}"
        covered.add(matches[0])
    assert covered == {n for n in deployments if not n.endswith("-beat")}


def test_each_worker_scales_on_its_own_queue() -> None:
    docs = manifests()
    deployments = of_kind(docs, "Deployment")
    scaled = of_kind(docs, "ScaledObject")
    auth = of_kind(docs, "TriggerAuthentication")
    secrets = of_kind(docs, "Secret")
    queues = set()
    for obj in scaled.values():
        target = deployments[obj["spec"]["scaleTargetRef"]["name"]]
        assert "replicas" not in target["spec"], "KEDA owns the replica count"
        command = parse_tandem(containers(target)[0]["command"])
        assert command.path == ("worker",)
        (trigger,) = obj["spec"]["triggers"]
        assert trigger["type"] == "redis"
        assert trigger["metadata"]["listName"] == Queue(str(command.service)).value
        queues.add(trigger["metadata"]["listName"])
        ref = auth[trigger["authenticationRef"]["name"]]
        for secret_ref in ref["spec"]["secretTargetRef"]:
            assert secret_ref["key"] in secrets[secret_ref["name"]]["stringData"]
        assert obj["spec"]["minReplicaCount"] >= 1, "a worker at zero would not answer /readyz"
    assert queues == {q.value for q in Queue}


def test_without_keda_workers_have_fixed_replicas() -> None:
    docs = manifests(keda={"enabled": False})
    assert not [d for d in docs if d["apiVersion"].startswith("keda.sh/")]
    for doc, _, inv in workloads(docs):
        if inv.path == ("worker",):
            assert doc["spec"]["replicas"] >= 1


def test_migration_runs_as_a_hook_after_its_config() -> None:
    docs = manifests()
    (job,) = of_kind(docs, "Job").values()
    annotations = job["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    assert parse_tandem(containers(job)[0]["command"]).path == ("db", "upgrade")
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    weight = int(annotations["helm.sh/hook-weight"])
    needed = {
        s["configMapRef"]["name"] for s in containers(job)[0]["envFrom"] if "configMapRef" in s
    }
    needed |= {s["secretRef"]["name"] for s in containers(job)[0]["envFrom"] if "secretRef" in s}
    needed.add(job["spec"]["template"]["spec"]["serviceAccountName"])
    for doc in docs:
        if doc["metadata"]["name"] in needed and doc["kind"] != "Job":
            hook = doc["metadata"].get("annotations", {})
            assert "pre-install" in hook.get("helm.sh/hook", ""), f"{doc['kind']} is not there yet"
            assert int(hook["helm.sh/hook-weight"]) < weight


def test_existing_secret_is_used_instead_of_a_rendered_one() -> None:
    docs = manifests(existingSecret="tandem-credentials")
    assert not of_kind(docs, "Secret")
    for _, container, _ in workloads(docs):
        refs = [s["secretRef"]["name"] for s in container["envFrom"] if "secretRef" in s]
        assert refs == ["tandem-credentials"]


def test_engines_are_external_services_given_by_url() -> None:
    docs = manifests(engines={"coordinator": {"url": "http://vllm.llm:8000"}})
    (config,) = of_kind(docs, "ConfigMap").values()
    assert config["data"]["TANDEM_COORDINATOR_ENGINE_URL"] == "http://vllm.llm:8000"
    assert "TANDEM_EXECUTOR_ENGINE_URL" in config["data"]


def test_the_alerting_rules_become_a_prometheus_rule_when_asked() -> None:
    """The same file Compose's Prometheus loads (``test_alerts``), unchanged; off by default,
    since the kind exists only where the Prometheus Operator runs."""
    assert not of_kind(manifests(), "PrometheusRule")
    asked = {"prometheusRule": {"enabled": True, "labels": {"release": "monitoring"}}}
    (rule,) = of_kind(manifests(metrics=asked), "PrometheusRule").values()
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "monitoring"
    assert rule["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE
    assert rule["spec"] == yaml.safe_load((CHART / "files" / "alerts.yml").read_text())


def test_values_schema_rejects_a_misspelt_knob() -> None:
    """values.schema.json makes Helm refuse an operator's typo instead of ignoring it."""
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(CI_VALUES)
        for bad in (
            {"workers": {"executor": {"concurency": 3}}},
            {"workers": {"summariser": CI_VALUES.get("workers", {}).get("executor", {})}},
            {"image": {"repository": "tandem-serve", "tag": "latest"}},
            {"metrics": {"prometheusRule": {"enable": True}}},
        ):
            with pytest.raises(helm.HelmError):
                chart.render(merged(CI_VALUES, bad), name=RELEASE, namespace=NAMESPACE)
