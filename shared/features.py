"""THE feature functions of the sufficiency classifier, for serving and for training alike.

From the executor model's log-probabilities over its own prompt (question + insights so far,
one forward pass, no generation) plus the level index and the insight token count, a feature
set builds a fixed, ordered vector. Two sets exist, and a classifier version names its own (the
ONNX file carries the set's feature list; :func:`feature_set_for` finds the set from it and
refuses a list no set computes):

- ``prompt-stats`` (:data:`FEATURE_NAMES`, :func:`features`): statistics of the whole prompt.
- ``insight-span`` (:data:`SPAN_FEATURE_NAMES`, :func:`span_features`): statistics of the
  insight span and of what follows it, and the log-prob of the end-of-insights marker itself:
  how surprised the executor is that the insights end there. Computed on a part of the prompt
  that every domain shares (the insights and the layout's suffix), it carries across domains
  where whole-prompt statistics mostly describe each domain's surface form.

The scorer and the trainer call the same :meth:`FeatureSet.vector`, so the classifier is served
exactly the features it was trained on. The features, and where they come from:
docs/architecture.md, 'The method'.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

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
            # The least-squares slope in closed form (np.polyfit's result, without its
            # ~60 µs of general solver on every scoring).
            x = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
            slope = float(np.dot(x, values - mean) / np.dot(x, x))
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


SPAN_FEATURE_NAMES: tuple[str, ...] = (
    "level",
    "insight_span_tokens",
    "insight_mean",
    "insight_min",
    "insight_max",
    "insight_std",
    "suffix_mean",
    "suffix_min",
    "suffix_max",
    "suffix_std",
    "end_marker",
)


@dataclass(frozen=True)
class InsightSpan:
    """Where the insights lie among the prompt's tokens: ``[start, end)``; ``end`` is the
    end-of-insights marker's index, where the suffix (the marker and what follows) begins."""

    start: int
    end: int


def _span_stats(values: np.ndarray) -> list[float]:
    kept = values[np.isfinite(values)]
    if kept.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    return [float(kept.mean()), float(kept.min()), float(kept.max()), float(kept.std())]


def span_features(logprobs: Sequence[float | None], level: int, span: InsightSpan) -> list[float]:
    """The vector in :data:`SPAN_FEATURE_NAMES` order: level, the span's length, mean, min,
    max and std over the insights and over the suffix, and the end marker's log-prob (0 when
    the prompt has no marker)."""
    values = np.array([math.nan if v is None else v for v in logprobs], dtype=np.float64)
    start, end = max(1, min(span.start, span.end)), min(span.end, values.size)
    insights, suffix = values[start:end], values[end:]
    marker = float(suffix[0]) if suffix.size and math.isfinite(suffix[0]) else 0.0
    return [
        float(level),
        float(max(0, end - start)),
        *_span_stats(insights),
        *_span_stats(suffix),
        marker,
    ]


def insight_end(token_texts: Sequence[str], marker: str) -> int:
    """Index of the prompt token where the last end-of-insights ``marker`` begins (the marker
    may span tokens), or the prompt's length when there is none."""
    tail = ""
    for index in range(len(token_texts) - 1, -1, -1):
        # A marker that begins in this token ends within the next len(marker) - 1 characters.
        tail = token_texts[index] + tail[: len(marker) - 1]
        if marker in tail:
            return index
    return len(token_texts)


@dataclass(frozen=True)
class FeatureSet:
    """A named, ordered feature list and the function that computes it."""

    name: str
    names: tuple[str, ...]
    # Whether the vector needs the insights' place in the prompt (an :class:`InsightSpan`).
    uses_span: bool
    _compute: Callable[[Sequence[float | None], int, int, InsightSpan | None], list[float]]

    def vector(
        self,
        logprobs: Sequence[float | None],
        level: int,
        insight_tokens: int,
        span: InsightSpan | None = None,
    ) -> list[float]:
        if self.uses_span and span is None:
            raise ValueError(f"the {self.name} features need the insights' place in the prompt")
        return self._compute(logprobs, level, insight_tokens, span)


def _span_vector(
    logprobs: Sequence[float | None], level: int, _tokens: int, span: InsightSpan | None
) -> list[float]:
    assert span is not None
    return span_features(logprobs, level, span)


PROMPT_STATS = FeatureSet(
    "prompt-stats",
    FEATURE_NAMES,
    False,
    lambda lp, level, tokens, _span: features(lp, level, tokens),
)
INSIGHT_SPAN = FeatureSet("insight-span", SPAN_FEATURE_NAMES, True, _span_vector)
FEATURE_SETS: dict[str, FeatureSet] = {s.name: s for s in (PROMPT_STATS, INSIGHT_SPAN)}


class UnknownFeatures(ValueError):
    """A feature list no feature set computes (a model from another version of the code)."""


def feature_set_for(names: Sequence[str]) -> FeatureSet:
    """The feature set whose list is ``names`` (a model's metadata), or :class:`UnknownFeatures`."""
    for feature_set in FEATURE_SETS.values():
        if tuple(names) == feature_set.names:
            return feature_set
    known = "; ".join(f"{s.name}: {list(s.names)}" for s in FEATURE_SETS.values())
    raise UnknownFeatures(
        f"features {list(names)} are no feature set the scorer computes ({known}); "
        "retrain the model with `tandem classifier train`"
    )
