"""Cost-aware fitting of Tandem's per-level thresholds (and of the cascade baseline's one).

A setting is chosen by an :class:`Objective`: the cheapest one whose accuracy reaches a target
(by default the coordinator-alone accuracy), or, with ``lam``, the one maximising
accuracy - λ · cost / reference cost (the reference being coordinator-alone's cost, so λ is
unit-free). Where no setting reaches the target, the most accurate one is taken, the cheapest
among equals, and the result says the target was not reached.

Tandem's thresholds are searched exhaustively over a grid: per level, quantiles of that level's
validation scores plus "always stop" (0) and "never stop" (1.01). The replay is vectorised over
the grid but follows the same rule as :func:`tandem.classifier.policies.tandem_levels`, which
the tests check.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from tandem.classifier.collected import CollectedQuestion
from tandem.classifier.policies import (
    Spend,
    coordinator_alone,
    executor_call,
    extensions_up_to,
    fixed_level,
    scorer_call,
)

NEVER = 1.01  # no score reaches it: never stop as sufficient at that level
ALWAYS = 0.0
_EPSILON = 1e-9


@dataclass(frozen=True)
class Objective:
    target: float | None = None
    lam: float | None = None
    reference_cost: float = 1.0

    def __post_init__(self) -> None:
        if (self.target is None) == (self.lam is None):
            raise ValueError("give exactly one of a target accuracy or lambda")

    def describe(self) -> str:
        if self.lam is not None:
            return f"max accuracy - {self.lam:g} * cost / coordinator-alone cost"
        return f"cheapest with accuracy >= {self.target:.4f}"


@dataclass(frozen=True)
class Choice:
    index: int
    reached: bool | None  # the target was reached (None under lambda)


def choose(objective: Objective, accuracy: np.ndarray, cost: np.ndarray) -> Choice:
    """The index of the best candidate; ties go to the cheaper, then to the earlier one."""
    order = np.arange(len(accuracy))
    if objective.lam is not None:
        value = accuracy - objective.lam * cost / max(objective.reference_cost, _EPSILON)
        best = np.lexsort((order, cost, -value))[0]
        return Choice(int(best), None)
    assert objective.target is not None
    eligible = accuracy >= objective.target - _EPSILON
    if eligible.any():
        masked_cost = np.where(eligible, cost, np.inf)
        best = np.lexsort((order, -accuracy, masked_cost))[0]
        return Choice(int(best), True)
    best = np.lexsort((order, cost, -accuracy))[0]
    return Choice(int(best), False)


@dataclass(frozen=True)
class LevelTable:
    """Per question (rows) and level (columns), what the replay of Tandem needs."""

    scores: np.ndarray
    correct: np.ndarray
    finished: np.ndarray
    prefix_cost: np.ndarray  # coordinator extensions and scoring passes up to the level
    answer_cost: np.ndarray  # the executor answering with that level's insights

    @property
    def best_so_far(self) -> np.ndarray:
        """The paper's fallback per level: argmax of scores up to it (earliest on ties)."""
        levels = self.scores.shape[1]
        return np.stack([self.scores[:, : t + 1].argmax(axis=1) for t in range(levels)], axis=1)


def level_table(
    questions: Sequence[CollectedQuestion],
    scores: np.ndarray,
    cost: Callable[[Spend], float],
) -> LevelTable:
    n, levels = scores.shape
    correct = np.zeros((n, levels), dtype=bool)
    finished = np.zeros((n, levels), dtype=bool)
    prefix = np.zeros((n, levels))
    answer = np.zeros((n, levels))
    for i, question in enumerate(questions):
        scoring = Spend()
        for t, result in enumerate(question.levels):
            scoring += scorer_call(result.scoring)
            correct[i, t] = result.answer.correct
            finished[i, t] = result.finished
            prefix[i, t] = cost(extensions_up_to(question, t) + scoring)
            answer[i, t] = cost(executor_call(result.answer.call))
    return LevelTable(scores, correct, finished, prefix, answer)


def replay(table: LevelTable, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and mean cost of each threshold row of ``grid`` (shape [settings, levels])."""
    n = table.scores.shape[0]
    rows = np.arange(n)[None, :]
    sufficient = table.scores[None, :, :] >= grid[:, None, :]
    hard = table.finished.copy()
    hard[:, -1] = True
    stop = (sufficient | hard[None, :, :]).argmax(axis=2)
    stopped_sufficient = np.take_along_axis(sufficient, stop[:, :, None], axis=2)[:, :, 0]
    fallback = table.best_so_far[rows, stop]
    chosen = np.where(stopped_sufficient, stop, fallback)
    accuracy = table.correct[rows, chosen].mean(axis=1)
    cost = (table.prefix_cost[rows, stop] + table.answer_cost[rows, chosen]).mean(axis=1)
    return accuracy, cost


def candidate_thresholds(table: LevelTable, per_level: int) -> list[np.ndarray]:
    """Per level: quantiles of its scores, plus always-stop and never-stop."""
    out = []
    for t in range(table.scores.shape[1]):
        values = table.scores[:, t]
        quantiles = np.quantile(values, np.linspace(0.0, 1.0, per_level)) if per_level else []
        out.append(np.unique(np.concatenate([[ALWAYS, NEVER], np.round(quantiles, 6)])))
    return out


@dataclass(frozen=True)
class Calibration:
    thresholds: list[float]
    accuracy: float
    cost: float
    reached: bool | None
    objective: str
    settings_tried: int


@dataclass(frozen=True)
class GridSweep:
    """Every threshold setting of the grid with its accuracy and mean cost on one table."""

    grid: np.ndarray  # [settings, levels]
    accuracy: np.ndarray
    cost: np.ndarray

    def pick(self, objective: Objective) -> Calibration:
        picked = choose(objective, self.accuracy, self.cost)
        return Calibration(
            thresholds=[float(v) for v in self.grid[picked.index]],
            accuracy=float(self.accuracy[picked.index]),
            cost=float(self.cost[picked.index]),
            reached=picked.reached,
            objective=objective.describe(),
            settings_tried=len(self.grid),
        )


def sweep_grid(
    table: LevelTable,
    *,
    per_level: int = 12,
    max_settings: int = 200_000,
    batch: int = 4096,
    progress: bool = False,
) -> GridSweep:
    """Replay the whole grid once (fewer quantiles per level where it would be too large), so
    any number of objectives can pick from it."""
    from tqdm import tqdm

    levels = table.scores.shape[1]
    per_level = max(1, min(per_level, int(max_settings ** (1.0 / levels)) - 2))
    candidates = candidate_thresholds(table, per_level)
    total = math.prod(len(c) for c in candidates)
    accuracy = np.empty(total)
    cost = np.empty(total)
    combos = itertools.product(*candidates)
    grids: list[np.ndarray] = []
    with tqdm(total=total, desc="calibrate", unit="setting", disable=not progress) as bar:
        done = 0
        while done < total:
            grid = np.array(list(itertools.islice(combos, batch)), dtype=np.float64)
            accuracy[done : done + len(grid)], cost[done : done + len(grid)] = replay(table, grid)
            grids.append(grid)
            done += len(grid)
            bar.update(len(grid))
    return GridSweep(np.concatenate(grids), accuracy, cost)


def fit_thresholds(
    table: LevelTable,
    objective: Objective,
    *,
    per_level: int = 12,
    max_settings: int = 200_000,
    batch: int = 4096,
    progress: bool = False,
) -> Calibration:
    """Search the grid exhaustively for the setting ``objective`` prefers."""
    sweep = sweep_grid(
        table, per_level=per_level, max_settings=max_settings, batch=batch, progress=progress
    )
    return sweep.pick(objective)


@dataclass(frozen=True)
class CascadeFit:
    threshold: float
    accuracy: float
    cost: float
    reached: bool | None


def fit_cascade(
    questions: Sequence[CollectedQuestion],
    cost: Callable[[Spend], float],
    objective: Objective,
) -> CascadeFit:
    """The confidence threshold of the cascade baseline, by the same objective as Tandem's."""
    confidence = np.array(
        [
            np.nan if q.levels[0].answer.mean_logprob is None else q.levels[0].answer.mean_logprob
            for q in questions
        ]
    )
    first = [fixed_level(q, 0) for q in questions]
    alone = [coordinator_alone(q) for q in questions]
    right_first = np.array([o.correct for o in first])
    right_alone = np.array([o.correct for o in alone])
    cost_first = np.array([cost(o.spend) for o in first])
    cost_alone = np.array([cost(o.spend) for o in alone])
    known = np.unique(confidence[~np.isnan(confidence)])
    if known.size:
        candidates = np.concatenate([[known[0] - 1.0], known, [known[-1] + 1.0]])
    else:
        candidates = np.array([0.0])
    # NaN (no confidence reported) always escalates: nothing says the executor was sure.
    escalate = np.isnan(confidence)[None, :] | (confidence[None, :] < candidates[:, None])
    accuracy = np.where(escalate, right_alone, right_first).mean(axis=1)
    spent = (cost_first[None, :] + np.where(escalate, cost_alone, 0.0)).mean(axis=1)
    picked = choose(objective, accuracy, spent)
    return CascadeFit(
        threshold=float(candidates[picked.index]),
        accuracy=float(accuracy[picked.index]),
        cost=float(spent[picked.index]),
        reached=picked.reached,
    )
