"""``tandem prices`` and the seed ``tandem db upgrade`` writes, against the test database."""

from __future__ import annotations

import uuid
from decimal import Decimal

from typer.testing import CliRunner

from shared.db.session import unit_of_work
from shared.prices import configured_profiles
from shared.prices import repository as repo
from tandem.cli import app

runner = CliRunner()


def test_db_upgrade_seeds_each_configured_model_once(database_url: str) -> None:
    first = runner.invoke(app, ["db", "upgrade"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, ["db", "upgrade"])
    assert again.exit_code == 0 and "seeded" not in again.output
    profiles = configured_profiles()
    with unit_of_work() as session:
        for profile in (profiles.coordinator, profiles.executor):
            seeded = [r for r in repo.history(session, profile.name) if r.source == "environment"]
            assert len(seeded) == 1
            assert seeded[0].generated_per_mtok == profile.price_output_per_mtok


def test_prices_set_and_list(database_url: str) -> None:
    model = f"cli-{uuid.uuid4().hex[:8]}"
    refused = runner.invoke(app, ["prices", "set", model, "--prompt", "1", "--generated", "2"])
    assert refused.exit_code == 2  # no engine serves it: a typo until --new-model says not
    args = ["prices", "set", model, "--prompt", "1", "--generated", "2", "--new-model"]
    older = runner.invoke(app, [*args, "--from", "2026-01-01T00:00:00+0000"])
    assert older.exit_code == 0, older.output
    newer = runner.invoke(
        app, ["prices", "set", model, "--prompt", "3", "--generated", "4", "--cached-prompt", "1"]
    )
    assert newer.exit_code == 0, newer.output
    too_dear = runner.invoke(
        app, ["prices", "set", model, "--prompt", "1", "--generated", "1", "--cached-prompt", "2"]
    )
    assert too_dear.exit_code == 2 and "cached_prompt_per_mtok" in too_dear.output
    listed = runner.invoke(app, ["prices", "list", "--model", model])
    assert listed.exit_code == 0, listed.output
    lines = [line.split("\t") for line in listed.output.strip().splitlines()[1:]]
    assert [(row[0], row[3], row[4], row[5]) for row in lines] == [
        ("*", "3", "4", "1"),
        ("", "1", "2", "1"),
    ]
    with unit_of_work() as session:
        assert repo.in_force(session)[model].prompt_per_mtok == Decimal(3)
