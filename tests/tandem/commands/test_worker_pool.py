"""``tandem worker`` runs the configured pool: threads unless TANDEM_WORKER_POOL or --pool say
otherwise."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from services.accounting.app import app as accounting
from shared.settings import get_worker_settings
from tandem.cli import app


@pytest.fixture
def argv(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    seen: list[list[str]] = []

    def main(_: Any, args: list[str]) -> None:
        seen.append(args)

    monkeypatch.setattr(type(accounting), "worker_main", main)
    return seen


@pytest.mark.parametrize(
    ("environment", "options", "pool"),
    [
        ({}, [], "threads"),
        ({"TANDEM_WORKER_POOL": "prefork"}, [], "prefork"),
        ({"TANDEM_WORKER_POOL": "prefork"}, ["--pool", "solo"], "solo"),
    ],
)
def test_the_worker_runs_the_configured_pool(
    argv: list[list[str]],
    monkeypatch: pytest.MonkeyPatch,
    environment: dict[str, str],
    options: list[str],
    pool: str,
) -> None:
    monkeypatch.delenv("TANDEM_WORKER_POOL", raising=False)
    monkeypatch.delenv("TANDEM_METRICS_PORT", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    get_worker_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["worker", "accounting", *options])
    finally:
        get_worker_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert f"--pool={pool}" in argv[-1]


def test_an_unknown_pool_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_WORKER_POOL", "gevent")
    get_worker_settings.cache_clear()
    try:
        with pytest.raises(ValueError, match="worker_pool"):
            get_worker_settings()
    finally:
        get_worker_settings.cache_clear()
