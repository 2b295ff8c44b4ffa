"""Offline scores: the exported ONNX classifier over every level of collected questions.

The same file and the same feature set as the scorer (the one the metadata's feature list
names, :func:`shared.features.feature_set_for`), batched instead of one row per task.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from shared.classifier import read_metadata
from shared.errors import ConfigurationError
from shared.features import UnknownFeatures, feature_set_for
from tandem.classifier.collected import CollectedQuestion, CollectHeader, Featurizer


def model_featurizer(model: Path, header: CollectHeader) -> Featurizer:
    """The feature set ``model`` was trained on, applied to files collected like ``header``."""
    try:
        return Featurizer.of(feature_set_for(read_metadata(model).feature_names), header)
    except (UnknownFeatures, ValueError) as error:
        raise ConfigurationError(f"{model}: {error}") from error


def score_questions(
    model: Path, questions: Sequence[CollectedQuestion], header: CollectHeader
) -> np.ndarray:
    """Scores of shape [questions, levels]."""
    import onnxruntime

    featurizer = model_featurizer(model, header)
    if not questions:
        return np.zeros((0, 0), dtype=np.float64)
    levels = len(questions[0].levels)
    matrix = np.array(
        [vector for q in questions for vector in featurizer.vectors(q)], dtype=np.float32
    )
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(model), sess_options=options, providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name
    (output,) = session.run(None, {name: matrix})
    return np.asarray(output, dtype=np.float64).reshape(len(questions), levels)
