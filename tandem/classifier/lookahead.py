"""Fitting the cost-aware lookahead stop rule (beyond the paper; the rule itself:
:class:`shared.classifier.rules.LookaheadRule`).

From the features at level t, one small L2-regularised logistic regression per pair of budgets
(t, k), k >= t, predicts P(the executor answers right at level k); they are fitted on the
``train`` questions, the same ones the classifier was trained on. Each level's cost is the mean,
over the validation questions, of stopping there (the coordinator's insights and the scoring
passes up to it, then the executor's answer), relative to the coordinator alone's (else the last
level's), the calibration's own unit. λ is then chosen on the validation questions by the
calibration's objective, each candidate replayed by the serving decision function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.classifier.rules import LOOKAHEAD, THRESHOLD, Logistic, LookaheadRule
from tandem.classifier.calibrate import CalibrationSettings, resolve_objective
from tandem.classifier.collected import (
    CollectedQuestion,
    Featurizer,
    fitting_split,
    read_collected,
    validation_questions,
)
from tandem.classifier.model_files import read_card, set_metadata, update_card
from tandem.classifier.policies import (
    CostModel,
    Spend,
    executor_call,
    extensions_up_to,
    scoring_up_to,
    tandem,
)
from tandem.classifier.scoring import model_featurizer, score_questions
from tandem.classifier.thresholds import Objective, choose

# Rule weights tried on validation: P_k - P_t is a difference of probabilities and the costs
# are shares of the coordinator alone's, so useful values lie roughly between 0 and a few.
RULE_LAMBDAS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
L2 = 1.0
_NEWTON_STEPS = 25


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = L2) -> Logistic:
    """Standardised features, then Newton's method on the L2-penalised log-loss (the bias
    unpenalised): a convex problem, so the fit is deterministic."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(_NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -30, 30)))
        gradient = z.T @ (p - y) + penalty * w
        hessian = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return Logistic(
        tuple(float(v) for v in mean),
        tuple(float(v) for v in scale),
        tuple(float(v) for v in w[:-1]),
        float(w[-1]),
    )


def train_questions(questions: Sequence[CollectedQuestion]) -> list[CollectedQuestion]:
    """The questions the classifier was fitted on (the file's ``train`` split, less those held
    out for validation when the file has no validation split of its own)."""
    has_validation = any(q.split == "validation" for q in questions)
    return [q for q in questions if fitting_split(q, has_validation) == "train"]


def fit_models(
    train: Sequence[CollectedQuestion], l2: float = L2, featurizer: Featurizer = Featurizer()
) -> dict[tuple[int, int], Logistic]:
    """One model per (budget now, budget later), on the levels the serving path can score."""
    budgets = [r.budget for r in train[0].levels]
    models: dict[tuple[int, int], Logistic] = {}
    for t, now in enumerate(budgets):
        scored = [q for q in train if t < q.reachable]
        if not scored:
            scored = list(train)
        x = np.array([featurizer.vector(q, t) for q in scored], dtype=np.float64)
        for k in range(t, len(budgets)):
            y = np.array([q.levels[k].answer.correct for q in scored], dtype=np.float64)
            models[(now, budgets[k])] = fit_logistic(x, y, l2)
    return models


def stop_cost(question: CollectedQuestion, level: int) -> Spend:
    """What stopping at ``level`` spends: insights and scoring up to it, then the answer."""
    return (
        extensions_up_to(question, level)
        + scoring_up_to(question, level)
        + executor_call(question.levels[level].answer.call)
    )


def level_costs(
    questions: Sequence[CollectedQuestion], metric: Callable[[Spend], float], reference: float
) -> dict[int, float]:
    budgets = [r.budget for r in questions[0].levels]
    return {
        budget: float(np.mean([metric(stop_cost(q, t)) for q in questions])) / max(reference, 1e-12)
        for t, budget in enumerate(budgets)
    }


@dataclass(frozen=True)
class LookaheadFit:
    rule: LookaheadRule
    accuracy: float  # on validation, under the chosen λ
    cost: float
    reached: bool | None
    objective: str


def replay(
    rule: LookaheadRule,
    questions: Sequence[CollectedQuestion],
    scores: np.ndarray,
    vectors: Sequence[Sequence[Sequence[float]]],
    metric: Callable[[Spend], float],
) -> tuple[float, float]:
    """Accuracy and mean cost of ``rule`` on ``questions`` by the serving decision function."""
    outcomes = [tandem(q, scores[i], rule, vectors[i]) for i, q in enumerate(questions)]
    return (
        float(np.mean([o.correct for o in outcomes])),
        float(np.mean([metric(o.spend) for o in outcomes])),
    )


@dataclass(frozen=True)
class LookaheadSweep:
    """The fitted models and costs, with every candidate λ replayed on validation."""

    models: dict[tuple[int, int], Logistic]
    costs: dict[int, float]
    lambdas: tuple[float, ...]
    accuracy: np.ndarray
    cost: np.ndarray

    def rule(self, lam: float) -> LookaheadRule:
        return LookaheadRule(lam=lam, costs=self.costs, models=self.models)

    def pick(self, objective: Objective) -> LookaheadFit:
        picked = choose(objective, self.accuracy, self.cost)
        return LookaheadFit(
            rule=self.rule(self.lambdas[picked.index]),
            accuracy=float(self.accuracy[picked.index]),
            cost=float(self.cost[picked.index]),
            reached=picked.reached,
            objective=objective.describe(),
        )


def sweep_lookahead(
    train: Sequence[CollectedQuestion],
    validation: Sequence[CollectedQuestion],
    validation_scores: np.ndarray,
    metric: Callable[[Spend], float],
    reference_cost: float,
    featurizer: Featurizer = Featurizer(),
    lambdas: Sequence[float] = RULE_LAMBDAS,
) -> LookaheadSweep:
    if not train or not validation:
        raise ValueError("the lookahead rule needs train and validation questions")
    models = fit_models(train, featurizer=featurizer)
    costs = level_costs(validation, metric, reference_cost)
    vectors = [featurizer.vectors(q) for q in validation]
    results = [
        replay(LookaheadRule(lam, costs, models), validation, validation_scores, vectors, metric)
        for lam in lambdas
    ]
    return LookaheadSweep(
        models,
        costs,
        tuple(lambdas),
        np.array([a for a, _ in results]),
        np.array([c for _, c in results]),
    )


def install_rule(model: Path, collected: Path, kind: str) -> LookaheadFit | None:
    """Write the version's schedule and stop rule into the model file and its card: ``threshold``
    (the paper's, with the calibrated thresholds) or ``lookahead``, fitted here with λ chosen by
    the card's calibration objective. The schedule is the collected file's levels."""
    header, questions = read_collected(collected)
    levels = list(header.levels)
    card = read_card(model)
    if card.get("thresholds") is not None and len(card["thresholds"]) != len(levels):
        raise ValueError(
            f"{model} has {len(card['thresholds'])} thresholds, {collected} {len(levels)} "
            f"levels {levels}: calibrate it on this file first"
        )
    if kind == THRESHOLD:
        set_metadata(model, levels=levels, stop_rule={"kind": THRESHOLD})
        update_card(model, levels=levels, stop_rule={"kind": THRESHOLD})
        return None
    if kind != LOOKAHEAD:
        raise ValueError(f"unknown stop rule {kind!r}; use {THRESHOLD} or {LOOKAHEAD}")
    validation = validation_questions(questions)
    settings = CalibrationSettings.from_dict((card.get("calibration") or {}).get("settings"))
    metric = CostModel.from_header(header).metric(settings.cost)
    objective = resolve_objective(validation, settings, metric)
    sweep = sweep_lookahead(
        train_questions(questions),
        validation,
        score_questions(model, validation, header),
        metric,
        objective.reference_cost,
        model_featurizer(model, header),
    )
    fit = sweep.pick(objective)
    rule = fit.rule.to_json()
    set_metadata(model, levels=levels, stop_rule=rule)
    update_card(
        model,
        levels=levels,
        stop_rule={"kind": LOOKAHEAD, "lambda": fit.rule.lam},
        lookahead={
            "objective": fit.objective,
            "cost": settings.cost,
            "lambdas_tried": list(sweep.lambdas),
            "validation_questions": len(validation),
            "validation_accuracy": fit.accuracy,
            "validation_cost": fit.cost,
            "target_reached": fit.reached,
            "level_costs": rule["costs"],
        },
    )
    return fit
