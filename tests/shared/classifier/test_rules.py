"""Stop rules a version declares: the paper's thresholds keyed by token budget, and the
cost-aware lookahead rule, decided by one pure function."""

from __future__ import annotations

import math

import pytest

from shared.classifier.decision import decide
from shared.classifier.rules import (
    Logistic,
    LookaheadRule,
    RuleError,
    ThresholdRule,
    calibrated_for,
    decide_with,
    positional,
    rule_from_json,
)
from shared.db.models import TerminationReason as R

BUDGETS = (0, 32, 96)
WIDTH = 3  # a toy feature vector; the rule only needs weights of the same length


def constant(probability: float) -> Logistic:
    """A model that ignores the features: P = probability."""
    return Logistic((0.0,) * WIDTH, (1.0,) * WIDTH, (0.0,) * WIDTH, math.log(probability))


def first_feature(weight: float, bias: float) -> Logistic:
    return Logistic((0.0,) * WIDTH, (1.0,) * WIDTH, (weight, 0.0, 0.0), bias)


def lookahead(lam: float, models: dict[tuple[int, int], Logistic]) -> LookaheadRule:
    full = {
        (now, later): models.get((now, later), constant(0.5))
        for i, now in enumerate(BUDGETS)
        for later in BUDGETS[i:]
    }
    return LookaheadRule(lam=lam, costs={0: 0.1, 32: 0.3, 96: 0.6}, models=full)


def test_thresholds_are_keyed_by_budget_and_decide_as_the_paper() -> None:
    rule = rule_from_json({"kind": "threshold"}, BUDGETS, [0.9, 0.7, 0.5])
    assert isinstance(rule, ThresholdRule)
    assert [rule.threshold(b) for b in (96, 0, 32)] == [0.5, 0.9, 0.7]
    for scores in ([0.8], [0.8, 0.75], [0.2, 0.3, 0.4]):
        budget = BUDGETS[len(scores) - 1]
        assert decide_with(
            rule, scores, [], BUDGETS, insights_finished=False, next_affordable=True
        ) == decide(
            scores,
            rule.threshold(budget),
            last_level=2,
            insights_finished=False,
            next_affordable=True,
        )
    # A version without a schedule (or a job it was not calibrated on): by position.
    assert positional((0, 10, 20, 30), [0.4, 0.2]).thresholds == {0: 0.4, 10: 0.2, 20: 0.2, 30: 0.2}


def test_lookahead_goes_on_only_where_a_later_level_is_worth_its_cost() -> None:
    # P(right at 96 | features at 0) rises with the first feature; P(right at 0) is 0.2.
    rising = first_feature(4.0, -1.4)
    rule = lookahead(
        0.5,
        {
            (0, 0): constant(0.2),
            (0, 32): constant(0.2),
            (0, 96): rising,
            (32, 32): constant(0.2),
            (32, 96): rising,
        },
    )
    # The gain is worth going on at 0.5 * (0.6 - 0.1) = 0.25 points or more.
    hopeless, promising = [-2.0, 0.0, 0.0], [2.0, 0.0, 0.0]
    assert rule.gains(BUDGETS, 0, hopeless)[1] < 0.25 < rule.gains(BUDGETS, 0, promising)[1]
    stop = decide_with(
        rule, [0.1], hopeless, BUDGETS, insights_finished=False, next_affordable=True
    )
    assert (stop.stop, stop.reason, stop.chosen_level) == (True, R.SUFFICIENT, 0)
    go = decide_with(rule, [0.1], promising, BUDGETS, insights_finished=False, next_affordable=True)
    assert not go.stop
    # The other stop reasons still apply, with the paper's fallback to the best score.
    broke = decide_with(
        rule, [0.6, 0.1], promising, BUDGETS, insights_finished=False, next_affordable=False
    )
    assert (broke.reason, broke.chosen_level) == (R.BUDGET, 0)
    last = decide_with(
        rule, [0.1, 0.5, 0.3], promising, BUDGETS, insights_finished=False, next_affordable=True
    )
    assert (last.reason, last.chosen_level) == (R.MAX_LEVEL, 1)


def test_a_higher_weight_stops_earlier() -> None:
    models = {(0, 0): constant(0.2), (0, 96): constant(0.6)}  # +0.4 at 0.5 more cost
    vector = [0.0, 0.0, 0.0]
    cheap, dear = lookahead(0.5, models), lookahead(1.0, models)
    assert cheap.worth_going_on(BUDGETS, 0, vector)
    assert not dear.worth_going_on(BUDGETS, 0, vector)


def test_the_rule_round_trips_through_json_and_is_checked_against_the_schedule() -> None:
    rule = lookahead(0.3, {(0, 96): first_feature(1.5, 0.2)})
    parsed = rule_from_json(rule.to_json(), BUDGETS, [0.5, 0.5, 0.5])
    assert parsed == rule
    vector = [0.7, 0.1, -0.2]
    assert parsed.gains(BUDGETS, 0, vector) == rule.gains(BUDGETS, 0, vector)
    with pytest.raises(RuleError, match="lacks models"):
        rule_from_json(rule.to_json(), (0, 32, 96, 192), [0.5])
    with pytest.raises(RuleError, match="unknown stop rule"):
        rule_from_json({"kind": "oracle"}, BUDGETS, [0.5])
    with pytest.raises(RuleError, match="malformed"):
        rule_from_json({"kind": "lookahead", "lambda": 1.0}, BUDGETS, [0.5])


def test_a_job_is_calibrated_on_its_versions_schedule_or_a_prefix() -> None:
    assert calibrated_for(BUDGETS, [0, 32, 96]) and calibrated_for(BUDGETS, [0, 32])
    assert not calibrated_for(BUDGETS, [0, 96])  # the features carry the level's index
    assert not calibrated_for(BUDGETS, [0, 32, 96, 192])
    assert not calibrated_for(BUDGETS, [0, 50, 150])
