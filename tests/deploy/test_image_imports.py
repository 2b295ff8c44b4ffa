"""Each image carries only its target's extras, so each process must start with only those:
the modules a process imports at start (followed statically through the project's own
modules, skipping function bodies, where heavy imports belong) may use only distributions
that the target's requirements bring in."""

from __future__ import annotations

import ast
import importlib.metadata
import sys
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.support import ROOT
from tests.deploy.test_dockerfile import TARGETS, requirements_module

PROJECT = {"shared", "services", "tandem", "migrations"}

# What each process imports when it starts (the CLI first: every process starts through it).
PROCESSES: dict[str, tuple[str, list[str]]] = {
    "api serve": ("api", ["tandem.cli", "tandem.__main__", "services.api.app"]),
    "db upgrade": ("worker", ["tandem.cli", "tandem.commands.db", "shared.db.models"]),
    "beat": ("worker", ["tandem.cli", "services.accounting.app", "services.accounting.tasks"]),
    "worker-health": ("worker", ["tandem.cli", "tandem.commands.health"]),
    **{
        f"worker {service}": (
            "scorer" if service == "scorer" else "worker",
            ["tandem.cli", f"services.{service}.app", f"services.{service}.tasks"],
        )
        for service in ("coordinator", "scorer", "executor", "accounting")
    },
}


def module_file(name: str) -> Path | None:
    base = ROOT / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def import_time_imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """Absolute names imported when the module runs: not in functions, not TYPE_CHECKING."""
    package = module if is_package else module.rpartition(".")[0]

    def walk(nodes: list[ast.stmt]) -> Iterator[str]:
        for node in nodes:
            if isinstance(node, ast.Import):
                yield from (alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")
                    parent = parent[: len(parent) - node.level + 1]
                    base = ".".join([*parent, base] if base else parent)
                yield base
                yield from (f"{base}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If):
                test = ast.unparse(node.test)
                if "TYPE_CHECKING" not in test:
                    yield from walk(node.body)
                yield from walk(node.orelse)
            elif isinstance(node, ast.Try):
                yield from walk(node.body)
                for handler in node.handlers:
                    yield from walk(handler.body)
                yield from walk(node.orelse)
                yield from walk(node.finalbody)
            elif isinstance(node, ast.With | ast.ClassDef):  # class bodies run at import
                yield from walk(node.body)

    assert isinstance(tree, ast.Module)
    yield from walk(tree.body)


@cache
def third_party_imports(entry: str) -> dict[str, str]:
    """Top-level third-party module -> the project module that imports it at start."""
    found: dict[str, str] = {}
    seen: set[str] = set()
    stack = [entry]
    while stack:
        name = stack.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
            module = ".".join(parts[:i])
            if module in seen:
                continue
            path = module_file(module)
            if path is None:
                continue  # an attribute (`from x import y`), not a module
            seen.add(module)
            tree = ast.parse(path.read_text(), filename=str(path))
            for imported in import_time_imports(tree, module, path.name == "__init__.py"):
                top = imported.split(".")[0]
                if top in PROJECT:
                    stack.append(imported)
                elif top and top not in sys.stdlib_module_names and top != "__future__":
                    found.setdefault(top, module)
    return found


def distribution_closure(requirements: list[str]) -> set[str]:
    """Canonical names of the distributions ``requirements`` install, transitively."""
    names: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()
    stack = [Requirement(r) for r in requirements]
    while stack:
        requirement = stack.pop()
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        names.add(key[0])
        try:
            requires = importlib.metadata.requires(requirement.name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        extras = requirement.extras or {""}
        for line in requires:
            dependency = Requirement(line)
            if dependency.marker is None or any(
                dependency.marker.evaluate({"extra": extra}) for extra in extras
            ):
                stack.append(dependency)
    return names


@cache
def target_distributions(target: str) -> set[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = sorted(TARGETS[target])
    return distribution_closure(requirements_module().requirements(pyproject, extras))


@pytest.mark.parametrize("process", sorted(PROCESSES))
def test_process_starts_with_only_its_images_extras(process: str) -> None:
    target, entries = PROCESSES[process]
    available = target_distributions(target)
    providers = importlib.metadata.packages_distributions()
    missing = []
    for entry in entries:
        assert module_file(entry) is not None, f"{entry} does not exist"
        for top, importer in sorted(third_party_imports(entry).items()):
            dists = {canonicalize_name(d) for d in providers.get(top, [])}
            if not dists:
                missing.append(f"{top} (imported by {importer}; installed nowhere here)")
            elif not dists & available:
                missing.append(f"{top} from {sorted(dists)} (imported by {importer})")
    assert not missing, f"`tandem {process}` in the {target} image would fail: {missing}"


def test_the_check_sees_a_heavy_import() -> None:
    """Not vacuous: the scorer imports onnxruntime or numpy, which the worker image lacks."""
    heavy = set(third_party_imports("services.scorer.tasks")) - {"celery", "kombu"}
    assert heavy, "the scorer imports nothing beyond Celery?"
    assert not {
        canonicalize_name(d)
        for top in heavy
        for d in importlib.metadata.packages_distributions().get(top, [])
    } <= target_distributions("worker")
