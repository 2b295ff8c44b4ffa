"""The stop decision at level t (docs/architecture.md, 'The method'), as a pure function: the
scorer serves it and the offline replay (``tandem classifier``) runs the same code.

Stop when the score reaches the level's threshold (sufficient), when the coordinator finished
its insights, at the last level, or when the next level would not fit the job's reservation.
Stopping without a sufficient score falls back to the best-scoring level so far (the paper's
``argmax_k s^k``; ties go to the earlier, cheaper level).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.db.models import TerminationReason


@dataclass(frozen=True)
class Decision:
    stop: bool
    reason: TerminationReason | None = None
    chosen_level: int | None = None


def decide(
    scores: Sequence[float],
    threshold: float,
    *,
    last_level: int,
    insights_finished: bool,
    next_affordable: bool,
) -> Decision:
    """``scores[k]`` is s^k for levels 0..t; t is ``len(scores) - 1``."""
    level = len(scores) - 1
    if scores[level] >= threshold:
        return Decision(True, TerminationReason.SUFFICIENT, level)
    if insights_finished:
        reason = TerminationReason.INSIGHTS_FINISHED
    elif level >= last_level:
        reason = TerminationReason.MAX_LEVEL
    elif not next_affordable:
        reason = TerminationReason.BUDGET
    else:
        return Decision(False)
    best = max(range(len(scores)), key=lambda k: (scores[k], -k))
    return Decision(True, reason, best)
