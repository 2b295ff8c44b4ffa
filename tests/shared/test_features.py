"""The one feature function: order, values on known inputs, degenerate inputs."""

from __future__ import annotations

import math

import pytest

from shared.features import FEATURE_NAMES, features


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
