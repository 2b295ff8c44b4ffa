"""``tandem config``: every setting of every service, documented from the settings classes."""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import typer
from pydantic_settings import BaseSettings

app = typer.Typer(
    help="Configuration: what can be set, and what is in effect.", no_args_is_help=True
)

PACKAGES = ("shared", "services", "tandem")
SETTINGS_MODULE_NAMES = {"settings", "config"}
SECRET_WORDS = ("key", "secret", "password", "token")


def settings_classes() -> Iterator[type[BaseSettings]]:
    """Every BaseSettings class defined in a ``settings`` or ``config`` module of the project."""
    seen: set[type[BaseSettings]] = set()
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            if info.name.rsplit(".", 1)[-1] not in SETTINGS_MODULE_NAMES:
                continue
            module = importlib.import_module(info.name)
            for value in vars(module).values():
                if (
                    isinstance(value, type)
                    and issubclass(value, BaseSettings)
                    and value.__module__ == module.__name__
                    and value not in seen
                ):
                    seen.add(value)
                    yield value


def _portable(value: object) -> object:
    """Paths under the home directory shown as ``~/...``: the table must not name a machine."""
    if isinstance(value, Path) and value.is_absolute() and value.is_relative_to(Path.home()):
        return f"~/{value.relative_to(Path.home())}"
    return value


def rows() -> list[tuple[str, str, str]]:
    """(env var, default, description), one per field, inherited fields listed once."""
    table: dict[str, tuple[str, str, str]] = {}
    for cls in settings_classes():
        prefix = str(cls.model_config.get("env_prefix", ""))
        for name, field in cls.model_fields.items():
            env = f"{prefix}{name}".upper()
            if env in table:
                continue
            default = (
                ""
                if field.is_required()
                else json.dumps(
                    _portable(field.get_default(call_default_factory=True)), default=str
                )
            )
            table[env] = (env, default, field.description or "")
    return sorted(table.values())


def markdown_table() -> str:
    lines = ["| variable | default | what it does |", "| --- | --- | --- |"]
    lines += [f"| `{env}` | `{default}` | {text} |" for env, default, text in rows()]
    return "\n".join(lines)


README_START = "<!-- config-table:start -->"
README_END = "<!-- config-table:end -->"


def with_table(readme: str) -> str:
    """The README text with its configuration block replaced by the current table."""
    head, rest = readme.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    return f"{head}{README_START}\n{markdown_table()}\n{README_END}{tail}"


@app.command()
def docs(
    readme: Path | None = typer.Option(None, help="Rewrite this README's table in place."),
) -> None:
    """Print the configuration table (Markdown), or rewrite it inside the README."""
    if readme is None:
        typer.echo(markdown_table())
        return
    readme.write_text(with_table(readme.read_text()))


@app.command()
def show() -> None:
    """Print the settings in effect in this environment (secrets masked)."""
    for cls in settings_classes():
        values = cls().model_dump()
        for name, value in values.items():
            shown = "***" if any(w in name for w in SECRET_WORDS) and value else value
            typer.echo(f"{cls.__name__}.{name} = {shown}")
