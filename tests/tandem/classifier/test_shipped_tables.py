"""The classifier trained on the bundled real pair, and its table, are what the commands give.

Evaluation is offline (from the committed collected file, no engine), so CI reproduces the
committed table exactly; collecting it again takes about 40 minutes of CPU.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from shared.classifier import read_metadata

ROOT = Path(__file__).resolve().parents[3]
MODEL = ROOT / "models" / "classifier" / "gemma-smollm2-mlp-v1.onnx"
COLLECTED = ROOT / "models" / "classifier" / "data" / "gemma-smollm2-math-easy.jsonl"
RESULTS = ROOT / "models" / "classifier" / "results" / "gemma-smollm2-mlp-v1"


def test_committed_table_is_what_evaluate_writes(tmp_path: Path) -> None:
    # evaluate records its figures in the model's card: work on a copy, not the committed one.
    model = tmp_path / MODEL.name
    model.write_bytes(MODEL.read_bytes())
    model.with_suffix(".json").write_text(MODEL.with_suffix(".json").read_text())
    collected = str(COLLECTED.relative_to(ROOT))
    results = tmp_path / "results"
    command = ["classifier", "evaluate", str(model), collected, "--results", str(results)]
    subprocess.run(
        [sys.executable, "-m", "tandem", *command], check=True, cwd=ROOT, capture_output=True
    )
    assert (results / "table.md").read_text() == (RESULTS / "table.md").read_text()
    fresh = json.loads((results / "results.json").read_text())
    committed = json.loads((RESULTS / "results.json").read_text())
    for figures in (fresh, committed):
        figures["meta"].pop("created_at")
        figures["meta"].pop("model")  # where the (copied) model file was
    assert fresh == committed


def test_the_model_was_trained_on_the_real_pair() -> None:
    card = json.loads(MODEL.with_suffix(".json").read_text())
    header = card["trained_on"]["header"]
    assert header["coordinator"]["served_model"] == "gemma3-270m"
    assert header["executor"]["served_model"] == "smollm2-135m"
    assert list(read_metadata(MODEL).thresholds) == card["thresholds"]
