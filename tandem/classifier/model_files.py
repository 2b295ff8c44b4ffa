"""A trained classifier on disk: the ONNX file and its card, a JSON file next to it.

The ONNX metadata is what serving reads (feature list, version, level schedule, thresholds,
stop rule, data hash); the card (``model.onnx`` → ``model.json``) is for people and for
``activate``: what the model was trained on (the collected file's engines and prompt version),
its training metrics, how its thresholds were fitted, and its evaluation. Calibration writes the
thresholds to both, ``tandem classifier rule`` the schedule and the stop rule.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared.classifier.cards import card_path, read_card

__all__ = ["card_path", "read_card", "set_metadata", "set_thresholds", "update_card"]


def update_card(model: Path, **sections: Any) -> dict[str, Any]:
    """Merge ``sections`` into the card (top-level keys replaced) and write it back."""
    card = {**read_card(model), **sections}
    card_path(model).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n", "utf-8")
    return card


def set_metadata(model: Path, **values: Any) -> None:
    """Replace (or add) ONNX metadata entries, each stored as JSON; the graph is untouched."""
    import onnx

    graph = onnx.load(str(model))
    props = {prop.key: prop for prop in graph.metadata_props}
    for key, value in values.items():
        entry = props.get(key) or graph.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    onnx.save(graph, str(model))


def set_thresholds(model: Path, thresholds: list[float]) -> None:
    set_metadata(model, thresholds=thresholds)
