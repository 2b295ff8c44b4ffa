"""docker-compose.yml, checked without a Docker engine: against the Compose Specification's
JSON schema, and against the project itself (entry points, settings, ports, dependencies)."""

from __future__ import annotations

import importlib.resources
import json
import re
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from shared.tasks import Queue
from tests.deploy import support
from tests.deploy.support import (
    ROOT,
    Invocation,
    command_list,
    image_target,
    interpolate,
    load_compose_raw,
    operator_env,
    option_value,
    parse_tandem,
    read_env_example,
    settings_problems,
    strings_in,
    variables_in,
)

PROFILES = ("gpu", "cpu")
ENGINE_ALIASES = {"coordinator-engine", "executor-engine"}
# Ports the third-party images listen on (their documented defaults).
IMAGE_PORTS = {"postgres": 5432, "redis": 6379, "prom/prometheus": 9090, "grafana/grafana": 3000}
PINNED_TAG = re.compile(r"^v?\d+\.\d+(\.\d+)*([.-][A-Za-z0-9.]+)?$")


def compose_schema() -> dict[str, Any]:
    """The Compose Specification schema, as vendored by the check-jsonschema package."""
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    return dict(json.loads((vendor / "compose-spec.json").read_text()))


@cache
def compose() -> dict[str, Any]:
    """The file as Compose sees it with an operator's .env from .env.example."""
    return dict(interpolate(load_compose_raw(), operator_env()))


def services() -> dict[str, dict[str, Any]]:
    return dict(compose()["services"])


def active(profile: str) -> dict[str, dict[str, Any]]:
    return {
        name: svc
        for name, svc in services().items()
        if not svc.get("profiles") or profile in svc["profiles"]
    }


def tandem_services() -> dict[str, tuple[dict[str, Any], Invocation]]:
    out = {}
    for name, svc in services().items():
        argv = command_list(svc.get("command"))
        if argv[:1] == ["tandem"]:
            out[name] = (svc, parse_tandem(argv))
    return out


def environment(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def aliases(name: str, svc: dict[str, Any]) -> set[str]:
    names = {name}
    networks = svc.get("networks") or {}
    if isinstance(networks, dict):
        for net in networks.values():
            names |= set((net or {}).get("aliases", []))
    return names


def listen_ports(svc: dict[str, Any]) -> set[int]:
    """Ports a service's process listens on, from its command or its image's default."""
    ports: set[int] = set()
    argv = command_list(svc.get("command"))
    if (port := option_value(argv, "--port")) is not None:
        ports.add(int(port))
    if (metrics := environment(svc).get("TANDEM_METRICS_PORT")) not in (None, "", "0"):
        ports.add(int(str(metrics)))
    image = str(svc.get("image", "")).rsplit(":", 1)[0]
    if image in IMAGE_PORTS:
        ports.add(IMAGE_PORTS[image])
    return ports


def depends_on(svc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = svc.get("depends_on") or {}
    if isinstance(deps, list):
        return {d: {"condition": "service_started", "required": True} for d in deps}
    return {k: {"required": True, **(v or {})} for k, v in deps.items()}


# ------------------------------------------------------------------------------ the schema


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    schema = compose_schema()
    assert "Compose" in schema.get("title", "")
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(compose()), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_schema_check_catches_a_broken_file() -> None:
    """The schema check is not vacuous: a misspelt key fails it."""
    broken = json.loads(json.dumps(compose()))
    broken["services"]["api"]["healthcheck"]["intervall"] = "5s"
    validator = jsonschema.Draft202012Validator(compose_schema())
    assert list(validator.iter_errors(broken))


def test_secrets_are_required_not_defaulted() -> None:
    """Compose refuses to start without the secrets; no default password ships."""
    raw = json.dumps(load_compose_raw())
    for secret in (
        "POSTGRES_PASSWORD",
        "REDIS_PASSWORD",
        "ADMIN_API_KEY",
        "GRAFANA_ADMIN_PASSWORD",
    ):
        assert f"${{{secret}:?" in raw, secret
        env = operator_env({secret: ""})
        with pytest.raises(support.InterpolationError):
            interpolate(load_compose_raw(), env)


# ------------------------------------------------------------------------------ .env.example


def test_env_example_documents_every_variable_the_compose_file_reads() -> None:
    used = {v for s in strings_in(load_compose_raw()) for v in variables_in(s)}
    entries = read_env_example()
    missing = sorted(used - set(entries))
    assert not missing, f"variables used by docker-compose.yml but not in .env.example: {missing}"
    unused = sorted(n for n in set(entries) - used if not n.startswith("COMPOSE_"))
    assert not unused, f".env.example documents variables nothing reads: {unused}"
    undocumented = sorted(n for n, e in entries.items() if not e.documented)
    assert not undocumented, f"no comment explains: {undocumented}"


def test_env_example_ships_no_secret_values() -> None:
    secret = re.compile(r"PASSWORD|SECRET|(^|_)TOKEN$|_KEY$")
    filled = [n for n, e in read_env_example().items() if secret.search(n) and e.value]
    assert not filled, f".env.example must leave secrets empty: {filled}"


def test_env_example_profile_is_a_real_profile() -> None:
    profiles = read_env_example()["COMPOSE_PROFILES"].value.split(",")
    assert set(profiles) <= set(PROFILES)


# ------------------------------------------------------------------------------ entry points


def test_every_project_container_runs_a_real_tandem_entry_point() -> None:
    built = {name for name, svc in services().items() if "build" in svc}
    runs_tandem = set(tandem_services())
    assert built == runs_tandem, (
        f"built from our Dockerfile but not running `tandem`: {built ^ runs_tandem}"
    )


def test_one_worker_per_celery_service_and_one_beat() -> None:
    invocations = [inv for _, inv in tandem_services().values()]
    workers = sorted(inv.service or "" for inv in invocations if inv.path == ("worker",))
    assert workers == sorted(q.value for q in Queue)
    assert [inv.path for inv in invocations].count(("beat",)) == 1
    assert [inv.path for inv in invocations].count(("db", "upgrade")) == 1
    assert [inv.path for inv in invocations].count(("api", "serve")) == 1
    for svc, inv in tandem_services().values():
        if inv.path == ("beat",):
            assert "deploy" not in svc and "scale" not in svc, "beat must stay a singleton"


def test_the_local_stack_runs_the_entry_points_compose_deploys() -> None:
    """What `tandem stack up` (and so CI) runs is what compose deploys."""
    from tandem.stack.settings import StackSettings
    from tandem.stack.stack import Stack

    deployed = {(inv.path, inv.service) for _, inv in tandem_services().values()}
    stack = Stack(StackSettings())
    specs = [spec for phase in stack.specs() for spec in phase]
    assert {spec.name for spec in specs} >= {"api", "beat", "engine-coordinator"}
    for spec in specs:
        argv = ["tandem", *spec.argv[spec.argv.index("tandem") + 1 :]]
        inv = parse_tandem(argv)
        assert (inv.path, inv.service) in deployed, f"stack runs {argv}, compose does not"


def test_healthchecks_that_run_tandem_are_real_commands() -> None:
    for name, (svc, inv) in tandem_services().items():
        test = svc.get("healthcheck", {}).get("test", [])
        if test[:2] == ["CMD", "tandem"]:
            check = parse_tandem(test[1:])
            assert check.path == ("worker-health",), name
            assert check.service == inv.service, f"{name} checks another service's health"
            assert check.params["local"], f"{name}: the container probe must ping its own worker"
        if inv.path == ("worker",):
            assert test[:2] == ["CMD", "tandem"], f"{name} has no worker-health check"


# ------------------------------------------------------------------------------ settings


def test_every_service_gets_the_settings_it_reads() -> None:
    problems = [
        problem
        for name, (svc, inv) in tandem_services().items()
        for problem in settings_problems(inv, environment(svc))
    ]
    assert not problems, "\n".join(problems)


def test_settings_check_catches_a_missing_database_url() -> None:
    svc, inv = tandem_services()["api"]
    env = environment(svc)
    del env["TANDEM_DATABASE_URL"]
    env["TANDEM_NO_SUCH_KNOB"] = "1"
    problems = "\n".join(settings_problems(inv, env))
    assert "database_url" in problems
    assert "TANDEM_NO_SUCH_KNOB" in problems


# ------------------------------------------------------------------------------ images


def test_every_image_is_pinned() -> None:
    for name, svc in services().items():
        image = str(svc["image"])
        if "build" in svc:
            target = svc["build"]["target"]
            assert image.endswith(f"-{target}"), f"{name}: image tag must name its target"
            assert svc["build"]["context"] == "."
            continue
        if "@sha256:" in image:
            continue
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: {image} has no tag"
        assert PINNED_TAG.match(tag), f"{name}: {image} is not pinned to an exact version"


def test_build_targets_exist_in_the_dockerfile() -> None:
    stages = set(re.findall(r"(?im)^FROM\s+\S+\s+AS\s+(\S+)", support.DOCKERFILE.read_text()))
    for name, svc in services().items():
        if "build" in svc:
            assert svc["build"]["target"] in stages, name


def test_each_service_builds_the_target_with_its_extras() -> None:
    for name, (svc, inv) in tandem_services().items():
        assert svc["build"]["target"] == image_target(inv), f"{name} runs {inv.path}"


# ------------------------------------------------------------------------------ wiring


@pytest.mark.parametrize("profile", PROFILES)
def test_every_address_resolves_to_a_listening_service(profile: str) -> None:
    running = active(profile)
    providers: dict[str, list[str]] = {}
    for name, svc in running.items():
        for alias in aliases(name, svc):
            providers.setdefault(alias, []).append(name)
    clashes = {a: p for a, p in providers.items() if len(p) > 1}
    assert not clashes, f"profile {profile}: names served twice: {clashes}"
    assert set(providers) >= ENGINE_ALIASES, f"profile {profile} lacks an engine"

    def check(owner: str, host: str, port: int | None) -> None:
        assert host in providers, f"{owner}: {host} is not a service in profile {profile}"
        target = running[providers[host][0]]
        if port is not None:
            assert port in listen_ports(target), f"{owner}: nothing listens on {host}:{port}"

    for name, svc in running.items():
        for value in environment(svc).values():
            if "://" in value:
                url = urlsplit(value)
                check(name, str(url.hostname), url.port)
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    for job in prometheus["scrape_configs"]:
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, _, port = target.rpartition(":")
                if host not in {"127.0.0.1", "localhost"}:
                    check(f"prometheus job {job['job_name']}", host, int(port))


@pytest.mark.parametrize("profile", PROFILES)
def test_dependencies_exist_and_wait_for_the_right_state(profile: str) -> None:
    running = active(profile)
    for name, svc in running.items():
        for dep, spec in depends_on(svc).items():
            assert dep in services(), f"{name} depends on unknown {dep}"
            if dep not in running:
                assert spec["required"] is False, f"{name} needs {dep}, absent in {profile}"
                continue
            condition = spec.get("condition", "service_started")
            if condition == "service_healthy":
                assert "healthcheck" in running[dep], f"{name} waits for {dep}'s health: none"
            if condition == "service_completed_successfully":
                assert running[dep].get("restart", "no") == "no", f"{dep} is not a one-off"
    order: list[str] = []
    visiting: set[str] = set()

    def visit(node: str) -> None:
        if node in order:
            return
        assert node not in visiting, f"dependency cycle through {node}"
        visiting.add(node)
        for dep in depends_on(running[node]):
            if dep in running:
                visit(dep)
        visiting.discard(node)
        order.append(node)

    for name in running:
        visit(name)


def test_database_users_start_after_the_migration() -> None:
    for name, (svc, inv) in tandem_services().items():
        env = environment(svc)
        deps = depends_on(svc)
        if "TANDEM_DATABASE_URL" in env:
            assert deps.get("postgres", {}).get("condition") == "service_healthy", name
            if inv.path != ("db", "upgrade"):
                assert deps["migrate"]["condition"] == "service_completed_successfully", name
        if "TANDEM_REDIS_URL" in env and inv.path != ("db", "upgrade"):
            assert deps.get("redis", {}).get("condition") == "service_healthy", name


def test_published_ports_are_unique_and_reach_a_listener() -> None:
    seen: dict[str, str] = {}
    for name, svc in services().items():
        for entry in svc.get("ports", []):
            parts = str(entry).split(":")
            host_port, container_port = parts[-2], int(parts[-1])
            assert host_port not in seen, f"{name} and {seen.get(host_port)} publish {host_port}"
            seen[host_port] = name
            assert container_port in listen_ports(svc), f"{name}: nothing on {container_port}"


def test_volumes_are_declared_and_bind_mounts_exist() -> None:
    declared = set(compose().get("volumes", {}))
    for name, svc in services().items():
        for volume in svc.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"


def test_gpu_engines_reserve_a_gpu_and_serve_the_configured_models() -> None:
    for name, svc in active("gpu").items():
        if name not in active("cpu"):
            devices = svc["deploy"]["resources"]["reservations"]["devices"]
            assert any("gpu" in d.get("capabilities", []) for d in devices), name
            argv = command_list(svc["command"])
            assert option_value(argv, "--model-id"), name
    coordinator = command_list(services()["tgi-coordinator"]["command"])
    executor = command_list(services()["tgi-executor"]["command"])
    env = read_env_example()
    assert option_value(coordinator, "--model-id") == env["COORDINATOR_MODEL_ID"].value
    assert option_value(executor, "--model-id") == env["EXECUTOR_MODEL_ID"].value


def test_the_cpu_profile_runs_the_projects_own_engine() -> None:
    cpu_only = {n: s for n, s in active("cpu").items() if n not in active("gpu")}
    assert cpu_only
    for name, svc in cpu_only.items():
        inv = parse_tandem(command_list(svc["command"]))
        assert inv.path == ("engine", "serve"), name
        assert str(inv.params["backend"]).endswith("gguf"), name
        assert svc["build"]["target"] == "engine"
