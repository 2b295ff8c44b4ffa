"""Migrations are reversible and agree with the models (no pending autogenerate diff)."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from shared.db.base import Base
from tandem.commands.db import alembic_config
from tandem.stack.infra import InfraConfig, ensure_database

MIGRATION_DB = "tandem_migrations_test"


def test_upgrade_downgrade_upgrade_and_models_agree(infra: InfraConfig) -> None:
    ensure_database(infra, MIGRATION_DB, recreate=True)
    url = infra.database_url(MIGRATION_DB)
    config = alembic_config(url)
    engine = create_engine(url)
    try:
        command.upgrade(config, "head")
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())

        command.downgrade(config, "base")
        assert inspect(engine).get_table_names() == ["alembic_version"]

        command.upgrade(config, "head")
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert (
                context.get_current_revision()
                == ScriptDirectory.from_config(config).get_current_head()
            )
            diff = compare_metadata(context, Base.metadata)
        assert diff == [], f"models and migrations disagree: {diff}"
    finally:
        engine.dispose()


def test_migration_files_are_named_by_date_and_slug() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    for revision in script.walk_revisions():
        filename = revision.path.rsplit("/", 1)[-1]
        date, rev, *slug = filename.removesuffix(".py").split("_")
        assert len(date) == 8 and date.isdigit(), filename
        assert rev == revision.revision
        assert slug, f"{filename} has no slug"
