"""Every shipped classifier table is what the commands give from the committed files.

Evaluation is offline (from the committed collected file, no engine), so CI reproduces each
committed table exactly. Collecting again takes about 40 minutes of CPU for the bundled real
pair; the lab pair's collection is checked on a subset in ``tests/tandem/lab``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.classifier import read_metadata
from tests.tandem.classifier.committed import MODELS, evaluate_committed

# (classifier, collected file, committed results): each table, cross-domain ones included.
SHIPPED = {
    "real pair": ("gemma-smollm2-mlp-v1", "gemma-smollm2-math-easy", "gemma-smollm2-mlp-v1"),
    "real pair on humaneval": (
        "gemma-smollm2-mlp-v1",
        "gemma-smollm2-humaneval",
        "gemma-smollm2-mlp-v1-on-humaneval",
    ),
    "lab pair": ("lab-catalog-mlp-v1", "lab-catalog", "lab-catalog-mlp-v1"),
    "lab pair on lists": ("lab-catalog-mlp-v1", "lab-lists", "lab-catalog-mlp-v1-on-lists"),
}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_committed_table_is_what_evaluate_writes(name: str, tmp_path: Path) -> None:
    classifier, collected, committed_results = SHIPPED[name]
    results = evaluate_committed(classifier, collected, tmp_path)
    expected = MODELS / "results" / committed_results
    assert (results / "table.md").read_text() == (expected / "table.md").read_text()
    fresh = json.loads((results / "results.json").read_text())
    committed = json.loads((expected / "results.json").read_text())
    for figures in (fresh, committed):
        figures["meta"].pop("created_at")
        figures["meta"].pop("model")  # where the (copied) model file was
    assert fresh == committed


def test_the_default_model_was_trained_on_the_real_pair() -> None:
    model = MODELS / "gemma-smollm2-mlp-v1.onnx"
    card = json.loads(model.with_suffix(".json").read_text())
    header = card["trained_on"]["header"]
    assert header["coordinator"]["served_model"] == "gemma3-270m"
    assert header["executor"]["served_model"] == "smollm2-135m"
    assert list(read_metadata(model).thresholds) == card["thresholds"]


def test_the_lab_model_was_trained_on_the_lab_pair() -> None:
    model = MODELS / "lab-catalog-mlp-v1.onnx"
    card = json.loads(model.with_suffix(".json").read_text())
    header = card["trained_on"]["header"]
    assert header["coordinator"]["served_model"] == "tandem-lab-coordinator"
    assert header["prompt_version"] == "lab-v1"
    assert list(read_metadata(model).thresholds) == card["thresholds"]
