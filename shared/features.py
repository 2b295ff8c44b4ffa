"""THE feature function of the sufficiency classifier, for serving and for training alike.

From the executor model's log-probabilities over its own prompt (question + insights so far,
one forward pass, no generation) plus the level index and the insight token count, it builds a
fixed, ordered vector. The scorer and the trainer both call :func:`features`, so
the classifier is served exactly the features it was trained on; the ONNX file carries
:data:`FEATURE_NAMES` and the scorer refuses a model whose list differs. The features, and
where they come from: docs/architecture.md, 'The method'.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

FEATURE_NAMES: tuple[str, ...] = (
    "perplexity",
    "log_perplexity",
    "mean",
    "std",
    "min",
    "max",
    "slope",
    "first_quarter_mean",
    "last_quarter_mean",
    "share_rising",
    "share_falling",
    "trend_change",
    "seq_length",
    "level",
    "insight_tokens",
)
# exp() of a log-perplexity above this overflows float32; perplexity is capped there.
_MAX_LOG_PPL = 80.0


def features(logprobs: Sequence[float | None], level: int, insight_tokens: int) -> list[float]:
    """The feature vector, in :data:`FEATURE_NAMES` order.

    ``logprobs`` is one value per prompt token; ``None`` (the first token, which nothing
    precedes) and non-finite values are dropped.
    """
    values = np.array([v for v in logprobs if v is not None and math.isfinite(v)], dtype=np.float64)
    n = int(values.size)
    stats = [0.0] * 12
    if n > 0:
        mean = float(values.mean())
        log_ppl = min(-mean, _MAX_LOG_PPL)
        quarter = max(1, n // 4)
        first_q = float(values[:quarter].mean())
        last_q = float(values[-quarter:].mean())
        if n >= 2:
            x = np.arange(n, dtype=np.float64)
            slope = float(np.polyfit(x, values, 1)[0])
            steps = np.diff(values)
            rising = float((steps > 0).mean())
            falling = float((steps < 0).mean())
        else:
            slope = rising = falling = 0.0
        stats = [
            math.exp(log_ppl),
            log_ppl,
            mean,
            float(values.std()),
            float(values.min()),
            float(values.max()),
            slope,
            first_q,
            last_q,
            rising,
            falling,
            last_q - first_q,
        ]
    return [*stats, float(n), float(level), float(insight_tokens)]
