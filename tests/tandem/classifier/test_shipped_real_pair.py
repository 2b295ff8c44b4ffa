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
    model, collected = (str(path.relative_to(ROOT)) for path in (MODEL, COLLECTED))
    command = ["classifier", "evaluate", model, collected, "--results", str(tmp_path)]
    subprocess.run(
        [sys.executable, "-m", "tandem", *command], check=True, cwd=ROOT, capture_output=True
    )
    assert (tmp_path / "table.md").read_text() == (RESULTS / "table.md").read_text()
    fresh = json.loads((tmp_path / "results.json").read_text())
    committed = json.loads((RESULTS / "results.json").read_text())
    for results in (fresh, committed):
        results["meta"].pop("created_at")
    assert fresh == committed


def test_the_model_was_trained_on_the_real_pair() -> None:
    card = json.loads(MODEL.with_suffix(".json").read_text())
    header = card["trained_on"]["header"]
    assert header["coordinator"]["served_model"] == "gemma3-270m"
    assert header["executor"]["served_model"] == "smollm2-135m"
    assert list(read_metadata(MODEL).thresholds) == card["thresholds"]
