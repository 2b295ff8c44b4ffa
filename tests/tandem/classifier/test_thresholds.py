"""Threshold search: a constructed case with a known optimum, the objective's rules, and the
vectorised replay agreeing with the scorer's own decision function."""

from __future__ import annotations

import numpy as np
import pytest

from shared.classifier.rules import positional
from tandem.classifier.policies import tandem_levels
from tandem.classifier.thresholds import (
    NEVER,
    LevelTable,
    Objective,
    choose,
    fit_thresholds,
    replay,
)


def known_case() -> LevelTable:
    """Four questions, three levels. Coordinator extensions cost 10 a level, scoring passes 1,
    answers 1. q0 is right from level 0 and scores high there; q1 from level 1; q2 only at
    level 2; q3 never, so the cheapest place to give up on it is the first it can stop at."""
    scores = np.array(
        [
            [0.9, 0.2, 0.1],
            [0.3, 0.8, 0.5],
            [0.4, 0.3, 0.7],
            [0.1, 0.6, 0.6],
        ]
    )
    correct = np.array([[1, 1, 1], [0, 1, 1], [0, 0, 1], [0, 0, 0]], dtype=bool)
    prefix = np.tile([1.0, 12.0, 23.0], (4, 1))  # 10 per extension + 1 per scoring pass
    return LevelTable(
        scores=scores,
        correct=correct,
        finished=np.zeros((4, 3), dtype=bool),
        prefix_cost=prefix,
        answer_cost=np.ones((4, 3)),
    )


def test_cheapest_thresholds_reaching_the_target() -> None:
    # Optimum: q0 stops at 0, q1 and q3 at 1, q2 at 2: accuracy 3/4, cost (2+13+13+24)/4 = 13.
    # That needs 0.4 < tau0 <= 0.9 and 0.3 < tau1 <= 0.6 (tau1 > 0.6 sends q3 on, cost 15.75).
    result = fit_thresholds(known_case(), Objective(target=0.75, reference_cost=25.0))
    assert result.reached is True
    assert result.accuracy == pytest.approx(0.75)
    assert result.cost == pytest.approx(13.0)
    tau0, tau1, _ = result.thresholds
    assert 0.4 < tau0 <= 0.9
    assert 0.3 < tau1 <= 0.6


def test_an_unreachable_target_takes_the_most_accurate_then_cheapest() -> None:
    result = fit_thresholds(known_case(), Objective(target=1.0, reference_cost=25.0))
    assert result.reached is False
    assert (result.accuracy, result.cost) == pytest.approx((0.75, 13.0))


def test_lambda_trades_accuracy_for_cost() -> None:
    # lambda 1: 0.75 - 13/24 beats stopping everything at level 0 (0.25 - 2/24).
    mild = fit_thresholds(known_case(), Objective(lam=1.0, reference_cost=24.0))
    assert (mild.accuracy, mild.cost) == pytest.approx((0.75, 13.0))
    # lambda 3: everything at level 0 (0.25 - 3 * 2/24 = 0) is best.
    harsh = fit_thresholds(known_case(), Objective(lam=3.0, reference_cost=24.0))
    assert (harsh.accuracy, harsh.cost) == pytest.approx((0.25, 2.0))
    assert harsh.thresholds[0] <= 0.1


def test_choose_prefers_cheaper_then_earlier_among_equals() -> None:
    accuracy = np.array([0.8, 0.9, 0.9, 0.7])
    cost = np.array([5.0, 7.0, 6.0, 1.0])
    assert choose(Objective(target=0.85), accuracy, cost).index == 2
    assert choose(Objective(target=0.8), accuracy, cost).index == 0
    assert choose(Objective(target=0.95), accuracy, cost).index == 2  # most accurate, cheapest
    assert choose(Objective(lam=0.0), np.array([0.5, 0.5]), np.array([1.0, 1.0])).index == 0
    with pytest.raises(ValueError, match="exactly one"):
        Objective(target=0.5, lam=1.0)


def test_replay_matches_the_scorer_decision_rule() -> None:
    rng = np.random.default_rng(7)
    n, levels = 40, 4
    scores = rng.random((n, levels))
    finished_at = rng.integers(1, levels + 2, size=n)  # past the last level: never finished
    finished = np.arange(levels)[None, :] >= finished_at[:, None]
    table = LevelTable(
        scores=scores,
        correct=rng.random((n, levels)) < 0.6,
        finished=finished,
        prefix_cost=np.cumsum(rng.random((n, levels)) * 10, axis=1),
        answer_cost=rng.random((n, levels)),
    )
    grid = np.vstack([rng.random((30, levels)), np.full((1, levels), NEVER), np.zeros((1, 4))])
    accuracy, cost = replay(table, grid)
    for row in range(len(grid)):
        right, spent = 0, 0.0
        for i in range(n):
            budgets = [0, 10, 20, 30]
            rule = positional(budgets, list(grid[row]))
            stop, chosen = tandem_levels(rule, scores[i], [[]] * levels, budgets, finished[i])
            right += table.correct[i, chosen]
            spent += table.prefix_cost[i, stop] + table.answer_cost[i, chosen]
        assert accuracy[row] == pytest.approx(right / n)
        assert cost[row] == pytest.approx(spent / n)
