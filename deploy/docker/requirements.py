"""Print the requirements of the project's base install plus the given extras, one per line.

The image installs these in a layer of its own, before the source is copied, so that a code
change does not reinstall torch or onnxruntime; the project itself is then installed with
``--no-deps``. Self-references such as ``tandem-serve[api,engines]`` are expanded.
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

_SELF_REF = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)\[(?P<extras>[^\]]+)\]\s*$")


def requirements(pyproject: dict[str, object], extras: Iterable[str]) -> list[str]:
    """The base dependencies plus every requirement of ``extras``, in order, without repeats."""
    project = pyproject["project"]
    assert isinstance(project, dict)
    name = str(project["name"])
    optional: dict[str, list[str]] = project.get("optional-dependencies", {})
    out: list[str] = list(project.get("dependencies", []))
    seen_extras: set[str] = set()

    def add(extra: str) -> None:
        if extra in seen_extras:
            return
        if extra not in optional:
            raise SystemExit(f"unknown extra {extra!r}; known: {', '.join(sorted(optional))}")
        seen_extras.add(extra)
        for requirement in optional[extra]:
            match = _SELF_REF.match(requirement)
            if match and _normalise(match["name"]) == _normalise(name):
                for inner in match["extras"].split(","):
                    add(inner.strip())
            elif requirement not in out:
                out.append(requirement)

    for extra in extras:
        add(extra)
    return out


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: requirements.py PYPROJECT [EXTRA ...]", file=sys.stderr)
        return 2
    pyproject = tomllib.loads(Path(argv[0]).read_text())
    extras = [e for arg in argv[1:] for e in arg.split(",") if e]
    print("\n".join(requirements(pyproject, extras)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
