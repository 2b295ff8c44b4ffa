"""The README's configuration table is the one the settings classes generate."""

from __future__ import annotations

from pathlib import Path

from tandem.commands.config import markdown_table, rows, with_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_documents_every_setting() -> None:
    text = README.read_text()
    assert markdown_table() in text
    assert with_table(text) == text, (
        "README configuration table is stale: `tandem config docs --readme README.md`"
    )


def test_every_setting_has_a_description() -> None:
    missing = [env for env, _, text in rows() if not text]
    assert not missing, missing
