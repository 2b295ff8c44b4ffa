"""The local stack on the real engines uses the classifier trained on them, with its levels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tandem.stack import stack
from tandem.stack.settings import StackSettings


def card(tmp_path: Path, levels: list[int]) -> Path:
    model = tmp_path / "pair.onnx"
    model.write_bytes(b"onnx")
    model.with_suffix(".json").write_text(
        json.dumps({"trained_on": {"header": {"levels": levels}}})
    )
    return model


def test_real_engines_get_the_pair_classifier_and_its_levels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stack, "REAL_PAIR_CLASSIFIER", card(tmp_path, [0, 32, 96]))
    monkeypatch.delenv("TANDEM_LEVELS", raising=False)
    monkeypatch.delenv("TANDEM_CLASSIFIER_DEFAULT_PATH", raising=False)
    env = stack.Stack(StackSettings(engines="gguf")).environment()
    assert env["TANDEM_CLASSIFIER_DEFAULT_PATH"] == str(tmp_path / "pair.onnx")
    assert json.loads(env["TANDEM_LEVELS"]) == [0, 32, 96]
    sim = stack.Stack(StackSettings(engines="sim")).environment()
    assert "TANDEM_LEVELS" not in sim and "TANDEM_CLASSIFIER_DEFAULT_PATH" not in sim


def test_a_user_setting_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stack, "REAL_PAIR_CLASSIFIER", card(tmp_path, [0, 32, 96]))
    monkeypatch.setenv("TANDEM_LEVELS", "[0, 100]")
    env = stack.Stack(StackSettings(engines="gguf")).environment()
    assert "TANDEM_LEVELS" not in env and "TANDEM_CLASSIFIER_DEFAULT_PATH" not in env
