"""The operator's guide (deploy/README.md) gives commands an operator pastes: every `tandem`
command in it is a real one with real options, every compose service it names exists, and
every variable it tells the operator to set is one the deployment reads."""

from __future__ import annotations

import re
import shlex

from tests.deploy.support import ROOT, parse_tandem, read_env_example
from tests.deploy.test_compose import services

GUIDE = ROOT / "deploy" / "README.md"


def code_lines() -> list[str]:
    """Shell lines of the guide's ``bash`` blocks, continuations joined, comments dropped."""
    lines: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", GUIDE.read_text(), flags=re.S):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def tandem_commands() -> list[list[str]]:
    commands = []
    for line in code_lines():
        for part in re.split(r"\s(?:&&|\|\||;|\|)\s", line):
            words = shlex.split(part)
            for i, word in enumerate(words):
                # `tandem ...` itself, or run in a container: `exec [-T] SERVICE tandem`,
                # `kubectl exec ... -- tandem` (not `-n tandem`, a namespace).
                before = words[max(0, i - 3) : i]
                if word == "tandem" and (
                    i == 0 or before[-1:] == ["--"] or "exec" in before[-3:-1]
                ):
                    commands.append(words[i:])
                    break
    return commands


def test_guide_commands_are_real_tandem_commands() -> None:
    commands = tandem_commands()
    assert len(commands) >= 8
    paths = set()
    for argv in commands:
        paths.add(parse_tandem(argv).path)
    for needed in [("keys", "create"), ("keys", "revoke"), ("tenants", "set-budget")]:
        assert needed in paths, f"the guide does not show `tandem {' '.join(needed)}`"


def test_guide_inline_commands_are_real() -> None:
    """Inline `tandem ...` spans too, except the ones with placeholders (NAME, a|b, ...)."""
    spans = re.findall(r"`(tandem [^`]+)`", GUIDE.read_text())
    checked = 0
    for span in spans:
        words = shlex.split(span)
        if "|" in span or "..." in span or any(w.isupper() and len(w) > 1 for w in words):
            continue
        parse_tandem(words)
        checked += 1
    assert checked >= 3


def test_guide_names_existing_compose_services() -> None:
    names = set(services())
    for line in code_lines():
        match = re.search(r"docker compose (?:exec|logs|stop|start)(?: -T)? (.*)", line)
        if not match:
            continue
        for word in shlex.split(match.group(1)):
            if word.startswith("-"):
                continue
            assert word in names, f"`{line}` names no compose service {word!r}"
            if "exec" in line:
                break  # the rest is the command run inside the container
    scaled = re.findall(r"--scale ([a-z-]+)=", GUIDE.read_text())
    assert scaled and set(scaled) <= names


def test_guide_variables_are_documented_in_env_example() -> None:
    documented = set(read_env_example())
    mentioned = set(re.findall(r"`([A-Z][A-Z0-9_]{3,})(?:=[^`]*)?`", GUIDE.read_text()))
    env_like = {m for m in mentioned if not m.startswith("TANDEM_") and "_" in m}
    missing = sorted(env_like - documented)
    assert not missing, f"the guide mentions variables .env.example lacks: {missing}"
