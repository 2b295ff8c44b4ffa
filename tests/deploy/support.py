"""What the deployment checks share: the CLI as the source of entry points, the settings
classes as the source of environment variables, and Compose-style variable substitution.

Nothing here hard-codes a list of commands or variables: both are read from the code at test
time, so a new setting or command is checked as soon as it exists.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer.main
import yaml
from pydantic import AliasChoices, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from tandem.cli import app as cli_app
from tandem.commands.config import settings_classes

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
CHART = ROOT / "deploy" / "helm" / "tandem-serve"
YAMLLINT_CONFIG = ROOT / "deploy" / "yamllint.yaml"
SETTINGS_PREFIX = "TANDEM_"
LOOPBACK = re.compile(r"127\.0\.0\.1|localhost|\[::1\]")


# ------------------------------------------------------------------------------ entry points


@dataclass(frozen=True)
class Invocation:
    """A parsed ``tandem ...`` command line: the subcommand path and its parsed parameters."""

    path: tuple[str, ...]
    params: dict[str, Any]

    @property
    def service(self) -> str | None:
        """The Celery service a ``worker``/``worker-health`` invocation names."""
        value = self.params.get("service")
        return None if value is None else str(getattr(value, "value", value))


def parse_tandem(argv: Iterable[str]) -> Invocation:
    """Parse ``argv`` (starting with ``tandem``) against the real Typer app.

    Raises the CLI's own usage error for an unknown command, option or choice: whatever a
    container would fail on at start, the test fails on here.
    """
    args = [str(a) for a in argv]
    if not args or args[0] != "tandem":
        raise ValueError(f"not a tandem command: {args}")
    command: Any = typer.main.get_command(cli_app)
    rest = args[1:]
    path: list[str] = []
    parent = None
    name = "tandem"
    while True:
        ctx = command.make_context(name, list(rest), parent=parent)
        if not hasattr(command, "resolve_command"):
            return Invocation(tuple(path), dict(ctx.params))
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        if not rest:
            raise ValueError(f"{' '.join(args)}: a command group without a subcommand")
        name, command, rest = command.resolve_command(ctx, rest)
        path.append(name)
        parent = ctx


def image_target(invocation: Invocation) -> str:
    """The Dockerfile target (and so the extras) a process needs."""
    if invocation.path == ("api", "serve"):
        return "api"
    if invocation.path == ("engine", "serve"):
        return "engine"
    if invocation.path == ("worker",) and invocation.service == "scorer":
        return "scorer"
    return "worker"


# ------------------------------------------------------------------------------ settings


def settings_modules(invocation: Invocation) -> tuple[str, ...]:
    """Which modules' settings classes a process reads, by what it runs."""
    path = invocation.path
    if path[:1] in {("worker",), ("worker-health",)}:
        return ("shared", f"services.{invocation.service}")
    if path == ("beat",):
        return ("shared.settings", "services.accounting")
    if path == ("api", "serve"):
        # shared, not only shared.settings: admission prices jobs with the engines' settings.
        return ("shared", "services.api")
    if path == ("engine", "serve"):
        return ("services.engine",)
    if path[:1] == ("db",):
        return ("shared.settings",)
    raise AssertionError(f"no settings mapping for `tandem {' '.join(path)}`")


def classes_for(invocation: Invocation) -> list[type[BaseSettings]]:
    modules = settings_modules(invocation)
    return [
        cls
        for cls in settings_classes()
        if any(cls.__module__ == m or cls.__module__.startswith(m + ".") for m in modules)
    ]


def field_env_names(cls: type[BaseSettings], name: str, field: FieldInfo) -> set[str]:
    """The environment variable(s) pydantic-settings reads a field from (upper-cased)."""
    alias = field.validation_alias or field.alias
    if isinstance(alias, str):
        return {alias.upper()}
    if isinstance(alias, AliasChoices):
        return {c.upper() for c in alias.choices if isinstance(c, str)}
    prefix = str(cls.model_config.get("env_prefix", ""))
    return {f"{prefix}{name}".upper()}


def known_variables(classes: Iterable[type[BaseSettings]]) -> set[str]:
    names: set[str] = set()
    for cls in classes:
        for name, field in cls.model_fields.items():
            names |= field_env_names(cls, name, field)
    return names


def is_known(variable: str, classes: Iterable[type[BaseSettings]]) -> bool:
    variable = variable.upper()
    for cls in classes:
        delimiter = cls.model_config.get("env_nested_delimiter")
        for name, field in cls.model_fields.items():
            for env in field_env_names(cls, name, field):
                if variable == env or (delimiter and variable.startswith(env + delimiter.upper())):
                    return True
    return False


@contextmanager
def only_environment(env: Mapping[str, str]) -> Iterator[None]:
    """Run with exactly ``env`` as the process's TANDEM_* variables."""
    saved = dict(os.environ)
    try:
        for key in list(os.environ):
            if key.upper().startswith(SETTINGS_PREFIX):
                del os.environ[key]
        os.environ.update(env)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def settings_problems(
    invocation: Invocation,
    env: Mapping[str, str],
    *,
    known_from: Iterable[type[BaseSettings]] | None = None,
) -> list[str]:
    """Why ``env`` would not configure the process ``invocation`` runs (empty when it would).

    - every field without a default is set (by a variable, or by the command's option of the
      same name, as ``--host`` sets ``host``);
    - every field whose default points at loopback (a developer's local server) is set, since
      inside a container or a pod loopback is the wrong place;
    - every TANDEM_* variable is one a settings class reads (``known_from`` widens that to
      other processes' classes where one ConfigMap serves them all);
    - the settings classes validate with exactly this environment.
    """
    classes = classes_for(invocation)
    where = f"`tandem {' '.join(invocation.path)}`"
    upper = {k.upper(): v for k, v in env.items()}
    problems: list[str] = []
    for cls in classes:
        for name, field in cls.model_fields.items():
            names = field_env_names(cls, name, field)
            if names & set(upper) or invocation.params.get(name) is not None:
                continue  # set by the environment, or by the command line's own option
            if field.is_required():
                problems.append(f"{where}: {cls.__name__}.{name} is required: set {sorted(names)}")
            elif isinstance(field.default, str) and LOOPBACK.search(field.default):
                problems.append(
                    f"{where}: {cls.__name__}.{name} defaults to loopback "
                    f"({field.default!r}): set {sorted(names)}"
                )
    readers = list(known_from) if known_from is not None else classes
    for variable in upper:
        if variable.startswith(SETTINGS_PREFIX) and not is_known(variable, readers):
            problems.append(f"{where}: {variable} is read by no settings class")
    with only_environment({k: v for k, v in env.items() if k.upper().startswith(SETTINGS_PREFIX)}):
        for cls in classes:
            try:
                cls(_env_file=None)
            except ValidationError as exc:
                problems.append(f"{where}: {cls.__name__} rejects the environment: {exc}")
    return problems


def all_process_classes(invocations: Iterable[Invocation]) -> list[type[BaseSettings]]:
    seen: dict[type[BaseSettings], None] = {}
    for invocation in invocations:
        for cls in classes_for(invocation):
            seen[cls] = None
    return list(seen)


# ------------------------------------------------------------------------------ compose


_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)


class InterpolationError(ValueError):
    pass


def variables_in(text: str) -> set[str]:
    """Names of the variables a Compose string substitutes (``$$`` is an escaped dollar)."""
    return {
        m.group("braced") or m.group("plain")
        for m in _VARIABLE.finditer(text)
        if not m.group("escaped")
    }


def interpolate_string(text: str, env: Mapping[str, str]) -> str:
    """Compose's substitution: ``${V}``, ``${V:-d}``, ``${V-d}``, ``${V:?e}``, ``${V?e}``,
    ``${V:+r}``, ``$V`` and ``$$``."""

    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("braced") or match.group("plain")
        op, arg = match.group("op"), match.group("arg") or ""
        value = env.get(name)
        empty = value is None or (op is not None and op.startswith(":") and value == "")
        if op in {":-", "-"}:
            return arg if empty else str(value)
        if op in {":?", "?"}:
            if empty:
                raise InterpolationError(f"{name}: {arg}")
            return str(value)
        if op in {":+", "+"}:
            return "" if empty else arg
        return "" if value is None else value

    return _VARIABLE.sub(replace, text)


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return interpolate_string(value, env)
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    return value


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from strings_in(v)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from strings_in(v)


@dataclass(frozen=True)
class EnvExampleEntry:
    name: str
    value: str
    documented: bool


def read_env_example(path: Path = ENV_EXAMPLE) -> dict[str, EnvExampleEntry]:
    """``NAME=value`` lines; a variable counts as documented when its paragraph has a comment."""
    entries: dict[str, EnvExampleEntry] = {}
    for paragraph in re.split(r"\n\s*\n", path.read_text()):
        lines = [line.strip() for line in paragraph.splitlines() if line.strip()]
        documented = any(line.startswith("#") for line in lines)
        for line in lines:
            if line.startswith("#"):
                continue
            name, sep, value = line.partition("=")
            if not sep:
                raise AssertionError(f".env.example: not NAME=value: {line!r}")
            entries[name.strip()] = EnvExampleEntry(name.strip(), value.strip(), documented)
    return entries


def load_compose_raw() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


def operator_env(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """What an operator's .env holds after following .env.example: its values, with the
    secrets it leaves empty filled in."""
    env = {name: entry.value for name, entry in read_env_example().items()}
    for name, value in env.items():
        if not value:
            env[name] = f"test-{name.lower().replace('_', '-')}-0123456789abcdef"
    env.update(overrides or {})
    return env


def command_list(command: Any) -> list[str]:
    if isinstance(command, str):
        import shlex

        return shlex.split(command)
    return [str(c) for c in command or []]


def option_value(argv: list[str], option: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == option and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(option + "="):
            return arg.split("=", 1)[1]
    return None
