"""The scorer's stop rule and the paper's argmax fallback."""

from __future__ import annotations

from shared.classifier.decision import decide
from shared.db.models import TerminationReason as R


def test_sufficient_stops_at_this_level() -> None:
    d = decide([0.2, 0.9], 0.8, last_level=3, insights_finished=False, next_affordable=True)
    assert (d.stop, d.reason, d.chosen_level) == (True, R.SUFFICIENT, 1)


def test_below_threshold_goes_on() -> None:
    d = decide([0.2, 0.5], 0.8, last_level=3, insights_finished=False, next_affordable=True)
    assert not d.stop and d.chosen_level is None


def test_last_level_falls_back_to_argmax() -> None:
    d = decide(
        [0.3, 0.7, 0.4, 0.5], 0.8, last_level=3, insights_finished=False, next_affordable=True
    )
    assert (d.stop, d.reason, d.chosen_level) == (True, R.MAX_LEVEL, 1)


def test_finished_insights_stop_with_fallback() -> None:
    d = decide([0.6, 0.1], 0.8, last_level=3, insights_finished=True, next_affordable=True)
    assert (d.reason, d.chosen_level) == (R.INSIGHTS_FINISHED, 0)


def test_unaffordable_next_level_stops() -> None:
    d = decide([0.1, 0.2], 0.8, last_level=3, insights_finished=False, next_affordable=False)
    assert (d.reason, d.chosen_level) == (R.BUDGET, 1)


def test_sufficiency_wins_over_other_reasons_and_ties_go_early() -> None:
    d = decide([0.5, 0.85], 0.8, last_level=1, insights_finished=True, next_affordable=False)
    assert (d.reason, d.chosen_level) == (R.SUFFICIENT, 1)
    d = decide([0.4, 0.4, 0.4], 0.8, last_level=2, insights_finished=False, next_affordable=True)
    assert d.chosen_level == 0
