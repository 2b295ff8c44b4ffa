"""Evaluating a committed classifier on a committed collected file, as the table tests do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
MODELS = ROOT / "models" / "classifier"


def evaluate_committed(classifier: str, collected: str, tmp_path: Path) -> Path:
    """``tandem classifier evaluate`` of a committed classifier on a committed collected file,
    as a user runs it; returns the results folder it wrote."""
    source = MODELS / f"{classifier}.onnx"
    # evaluate records its figures in the model's card: work on a copy, not the committed one.
    model = tmp_path / source.name
    model.write_bytes(source.read_bytes())
    model.with_suffix(".json").write_text(source.with_suffix(".json").read_text())
    data = str((MODELS / "data" / f"{collected}.jsonl").relative_to(ROOT))
    results = tmp_path / "results"
    command = ["classifier", "evaluate", str(model), data, "--results", str(results)]
    subprocess.run(
        [sys.executable, "-m", "tandem", *command], check=True, cwd=ROOT, capture_output=True
    )
    return results
