"""A classifier's card: the JSON beside its ONNX file (``model.onnx`` → ``model.json``) saying
what it was trained on and how. Read by the scorer and by the launcher, which must not import
numpy for it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def card_path(model: Path) -> Path:
    """The card (``model.onnx`` → ``model.json``): what the model was trained on and how."""
    return model.with_suffix(".json")


def read_card(model: Path) -> dict[str, Any]:
    path = card_path(model)
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}
