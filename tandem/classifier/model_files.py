"""A trained classifier on disk: the ONNX file and its card, a JSON file next to it.

The ONNX metadata is what serving reads (feature list, version, thresholds, data hash); the card
(``model.onnx`` → ``model.json``) is for people and for ``activate``: what the model was trained
on (the collected file's engines and prompt version), its training metrics, how its thresholds
were fitted, and its evaluation. Calibration writes the thresholds to both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def card_path(model: Path) -> Path:
    return model.with_suffix(".json")


def read_card(model: Path) -> dict[str, Any]:
    path = card_path(model)
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def update_card(model: Path, **sections: Any) -> dict[str, Any]:
    """Merge ``sections`` into the card (top-level keys replaced) and write it back."""
    card = {**read_card(model), **sections}
    card_path(model).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n", "utf-8")
    return card


def set_thresholds(model: Path, thresholds: list[float]) -> None:
    """Replace the thresholds in the ONNX metadata (the graph itself is untouched)."""
    import onnx

    graph = onnx.load(str(model))
    for prop in graph.metadata_props:
        if prop.key == "thresholds":
            prop.value = json.dumps(thresholds)
            break
    else:
        entry = graph.metadata_props.add()
        entry.key, entry.value = "thresholds", json.dumps(thresholds)
    onnx.save(graph, str(model))
