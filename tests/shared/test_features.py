"""The feature sets: order, values on known inputs, degenerate inputs, finding the span."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared.features import (
    FEATURE_NAMES,
    INSIGHT_SPAN,
    PROMPT_STATS,
    SPAN_FEATURE_NAMES,
    InsightSpan,
    UnknownFeatures,
    feature_set_for,
    features,
    insight_end,
)


def named(values: list[float]) -> dict[str, float]:
    return dict(zip(FEATURE_NAMES, values, strict=True))


def test_vector_has_the_fixed_names_in_order() -> None:
    assert len(FEATURE_NAMES) == len(set(FEATURE_NAMES)) == 15
    assert FEATURE_NAMES[-3:] == ("seq_length", "level", "insight_tokens")
    assert len(features([-1.0, -2.0], 2, 150)) == len(FEATURE_NAMES)


def test_known_sequence() -> None:
    # None (first token) is dropped; 8 values, quarter = 2.
    f = named(features([None, -4.0, -3.0, -3.5, -2.0, -2.0, -1.0, -1.5, -1.0], 3, 250))
    values = [-4.0, -3.0, -3.5, -2.0, -2.0, -1.0, -1.5, -1.0]
    mean = sum(values) / 8
    assert f["mean"] == pytest.approx(mean)
    assert f["log_perplexity"] == pytest.approx(-mean)
    assert f["perplexity"] == pytest.approx(math.exp(-mean))
    assert (f["min"], f["max"]) == (-4.0, -1.0)
    assert f["first_quarter_mean"] == pytest.approx(-3.5)
    assert f["last_quarter_mean"] == pytest.approx(-1.25)
    assert f["trend_change"] == pytest.approx(2.25)
    assert f["slope"] > 0
    # steps: +1, -0.5, +1.5, 0, +1, -0.5, +0.5 -> 4 rising, 2 falling of 7
    assert f["share_rising"] == pytest.approx(4 / 7)
    assert f["share_falling"] == pytest.approx(2 / 7)
    assert (f["seq_length"], f["level"], f["insight_tokens"]) == (8.0, 3.0, 250.0)


def test_falling_sequence_has_negative_slope() -> None:
    f = named(features([-1.0, -2.0, -3.0, -4.0], 0, 0))
    assert f["slope"] == pytest.approx(-1.0)
    assert f["share_falling"] == 1.0 and f["share_rising"] == 0.0


@pytest.mark.parametrize("logprobs", [[], [None], [float("nan"), None]])
def test_empty_input_gives_zeros_and_keeps_level(logprobs: list[float | None]) -> None:
    f = named(features(logprobs, 2, 40))
    assert f["seq_length"] == 0.0 and f["mean"] == 0.0
    assert (f["level"], f["insight_tokens"]) == (2.0, 40.0)


def test_extreme_logprobs_do_not_overflow() -> None:
    f = named(features([-500.0, -600.0], 0, 0))
    assert math.isfinite(f["perplexity"]) and math.isfinite(f["log_perplexity"])


def test_the_span_set_reads_the_insights_the_suffix_and_the_end_marker() -> None:
    # <s> Q : a | b c d | </I> \n S :   (insights at 4..6, the marker at 7)
    logprobs: list[float | None] = [None, -1.0, -2.0, -3.0, -4.0, -6.0, -5.0, -20.0, -0.5]
    vector = dict(
        zip(
            SPAN_FEATURE_NAMES,
            INSIGHT_SPAN.vector(logprobs, 2, 99, InsightSpan(4, 7)),
            strict=True,
        )
    )
    assert vector["level"] == 2.0 and vector["insight_span_tokens"] == 3.0
    assert vector["insight_mean"] == pytest.approx(-5.0)
    assert (vector["insight_min"], vector["insight_max"]) == (-6.0, -4.0)
    assert vector["insight_std"] == pytest.approx(math.sqrt(2 / 3))
    assert vector["suffix_mean"] == pytest.approx(-10.25)
    assert vector["end_marker"] == -20.0
    # Level 0: no insights; the statistics of an empty span are zeros, not NaN.
    empty = INSIGHT_SPAN.vector(logprobs, 0, 0, InsightSpan(7, 7))
    assert empty[1:6] == [0.0] * 5 and empty[-1] == -20.0
    with pytest.raises(ValueError, match="place in the prompt"):
        INSIGHT_SPAN.vector(logprobs, 2, 99)


def test_the_end_marker_is_found_by_its_text_even_across_tokens() -> None:
    assert insight_end(["<s>", "Q", ":", " a", "</I>", "\n", "S", ":"], "</I>") == 4
    assert insight_end(["x", "</I>", " y", "</", "I>", "S"], "</I>") == 3  # the last one
    assert insight_end(["<end", "_of_", "insights>", "\n"], "<end_of_insights>") == 0
    assert insight_end(["no", " marker"], "</I>") == 2


def test_a_model_names_its_feature_set_by_its_list() -> None:
    assert feature_set_for(FEATURE_NAMES) is PROMPT_STATS
    assert feature_set_for(list(SPAN_FEATURE_NAMES)) is INSIGHT_SPAN
    with pytest.raises(UnknownFeatures, match="insight-span"):
        feature_set_for([*FEATURE_NAMES, "extra"])


@pytest.mark.parametrize("n", [2, 3, 17, 300])
def test_the_slope_is_the_least_squares_fit(n: int) -> None:
    values = np.random.default_rng(n).normal(-3.0, 2.0, n)
    slope = named(features([None, *values], 1, 10))["slope"]
    assert slope == pytest.approx(float(np.polyfit(np.arange(n), values, 1)[0]), abs=1e-12)
