"""The v2 and v3 lab pairs' classifier tables are what ``tandem classifier evaluate`` gives from
the committed collected files (shop, the domain each was trained on, and ages, across domains).

Evaluation is offline, so this reproduces the committed tables without an engine. The
classifier's scores come from ONNX Runtime, whose sums may differ in their last digits on
another CPU: numbers are compared with a tolerance, every word of the tables exactly.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from shared.classifier import read_metadata
from shared.features import feature_set_for
from tests.tandem.classifier.committed import MODELS, evaluate_committed

# (classifier, collected file) -> committed results folder
TABLES = {
    ("lab-v2-shop-mlp-v1", "lab-v2-shop"): "lab-v2-shop",
    ("lab-v2-shop-mlp-v1", "lab-v2-ages"): "lab-v2-ages",
    ("lab-v3-shop-span-v1", "lab-v3-shop"): "lab-v3-shop",
    ("lab-v3-shop-span-v1", "lab-v3-ages"): "lab-v3-ages",
}
# A question whose score sits on a threshold may stop at another level on another CPU: one
# question in 1,000 moves an accuracy by 0.001 and a table's percentage by 0.1.
FLOAT_REL, FLOAT_ABS = 2e-3, 2e-3
TABLE_ABS = 0.25
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def assert_close(actual: object, expected: object, where: str) -> None:
    """``actual == expected``, numbers within FLOAT_REL / FLOAT_ABS of each other."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        assert actual == expected, where
    elif isinstance(expected, int | float) and isinstance(actual, int | float):
        assert actual == pytest.approx(expected, rel=FLOAT_REL, abs=FLOAT_ABS), where
    elif isinstance(expected, dict) and isinstance(actual, dict):
        assert actual.keys() == expected.keys(), where
        for key, value in expected.items():
            assert_close(actual[key], value, f"{where}.{key}")
    elif isinstance(expected, list) and isinstance(actual, list):
        assert len(actual) == len(expected), where
        for index, (mine, theirs) in enumerate(zip(actual, expected, strict=True)):
            assert_close(mine, theirs, f"{where}[{index}]")
    else:
        assert actual == expected, where


def assert_same_table(actual: str, expected: str) -> None:
    """The same text, but each number within TABLE_ABS (or FLOAT_REL) of the committed one."""
    assert NUMBER.split(actual) == NUMBER.split(expected)
    for mine, theirs in zip(NUMBER.findall(actual), NUMBER.findall(expected), strict=True):
        assert float(mine) == pytest.approx(float(theirs), rel=FLOAT_REL, abs=TABLE_ABS)


def test_tolerant_comparisons_still_catch_a_changed_figure() -> None:
    assert_same_table("| tandem | 97.1% |", "| tandem | 97.2% |")
    with pytest.raises(AssertionError):
        assert_same_table("| tandem | 95.1% |", "| tandem | 97.2% |")
    with pytest.raises(AssertionError):
        assert_same_table("| cascade | 97.2% |", "| tandem | 97.2% |")
    with pytest.raises(AssertionError):
        assert_close({"accuracy": 0.95}, {"accuracy": 0.97}, "row")


@pytest.mark.slow
@pytest.mark.parametrize(("classifier", "collected"), sorted(TABLES))
def test_committed_table_is_what_evaluate_writes(
    classifier: str, collected: str, tmp_path: Path
) -> None:
    results = evaluate_committed(classifier, collected, tmp_path)
    expected = MODELS / "results" / TABLES[classifier, collected]
    assert_same_table((results / "table.md").read_text(), (expected / "table.md").read_text())
    fresh = json.loads((results / "results.json").read_text())
    committed = json.loads((expected / "results.json").read_text())
    for figures in (fresh, committed):
        figures["meta"].pop("created_at")
        figures["meta"].pop("model")  # where the (copied) model file was
    assert_close(fresh, committed, "results")


@pytest.mark.parametrize(
    ("classifier", "pair", "features"),
    [("lab-v2-shop-mlp-v1", "v2", "prompt-stats"), ("lab-v3-shop-span-v1", "v3", "insight-span")],
)
def test_each_classifier_was_trained_on_its_pair_and_shop(
    classifier: str, pair: str, features: str
) -> None:
    model = MODELS / f"{classifier}.onnx"
    card = json.loads(model.with_suffix(".json").read_text())
    header = card["trained_on"]["header"]
    assert header["coordinator"]["served_model"] == f"tandem-lab-{pair}-coordinator"
    assert header["executor"]["served_model"] == f"tandem-lab-{pair}-executor"
    assert header["source"] == "shop"
    assert card["training"].get("features", "prompt-stats") == features
    assert feature_set_for(read_metadata(model).feature_names).name == features
    assert header["levels"] == [0, 7, 12, 17]
    assert list(read_metadata(model).thresholds) == card["thresholds"]
