"""Database migrations, run as a one-off step (never on every replica's start)."""

from __future__ import annotations

from pathlib import Path

import typer
from alembic import command
from alembic.config import Config

app = typer.Typer(help="Database migrations (Alembic).", no_args_is_help=True)

ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str | None = None) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    if database_url:
        config.set_main_option("sqlalchemy.url", database_url)
    return config


@app.command()
def upgrade(revision: str = typer.Argument("head")) -> None:
    """Upgrade the schema (default: to the latest revision); at the latest, give every
    configured model with no price a row from the environment's prices."""
    command.upgrade(alembic_config(), revision)
    if revision in ("head", "heads"):
        from shared.db.session import unit_of_work
        from shared.errors import ConfigurationError
        from shared.prices import seed_from_environment

        try:
            with unit_of_work() as session:
                for row in seed_from_environment(session):
                    typer.echo(f"price of {row.model} seeded from the environment")
        except ConfigurationError as exc:  # the API seeds on its first price read instead
            typer.echo(f"prices not seeded: {exc.message}", err=True)


@app.command()
def downgrade(
    revision: str = typer.Argument(..., help="Target revision, e.g. base or -1."),
) -> None:
    """Downgrade the schema."""
    command.downgrade(alembic_config(), revision)


@app.command()
def current() -> None:
    """Show the schema's current revision."""
    command.current(alembic_config(), verbose=True)
