"""Offline scores: the exported ONNX classifier over every level of collected questions.

The same file and the same feature function as the scorer (the metadata's feature list is
checked against :data:`shared.features.FEATURE_NAMES`), batched instead of one row per task.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from shared.classifier import read_metadata
from shared.errors import ConfigurationError
from shared.features import FEATURE_NAMES
from tandem.classifier.collected import CollectedQuestion


def score_questions(model: Path, questions: Sequence[CollectedQuestion]) -> np.ndarray:
    """Scores of shape [questions, levels]."""
    import onnxruntime

    meta = read_metadata(model)
    if meta.feature_names != FEATURE_NAMES:
        raise ConfigurationError(
            f"{model} was trained on features {list(meta.feature_names)}, not the current "
            f"{list(FEATURE_NAMES)}; retrain it with `tandem classifier train`"
        )
    if not questions:
        return np.zeros((0, 0), dtype=np.float64)
    levels = len(questions[0].levels)
    matrix = np.array(
        [result.features() for q in questions for result in q.levels], dtype=np.float32
    )
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(model), sess_options=options, providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name
    (output,) = session.run(None, {name: matrix})
    return np.asarray(output, dtype=np.float64).reshape(len(questions), levels)
