"""The honest frontier: what a classifier's stop rule buys over what a constant buys.

Computed offline from a collected file, on its test questions, next to ``evaluate``'s table:

- **every fixed level** and the coordinator alone, each at three costs: generated FLOPs (the
  paper's measure), total FLOPs (computed prompt + generated: what the hardware computes,
  each level re-sending question and insights, less what the engine's prefix cache served
  the policy's own earlier calls: :mod:`tandem.classifier.policies`)
  and money (cached prompt tokens at the cached price);
- **the best mixture of fixed levels at equal cost**: answering a share of the questions at one
  fixed level and the rest at another (chosen at random, so it needs no per-question
  decision) traces the upper envelope of the fixed levels; a stop rule is only worth its
  classifier where it lies above that envelope;
- **the oracle**: every question answered at its cheapest correct level (level 0 when none is);
- **the stop rules**: the version's own rule; the paper's thresholds fitted on the validation
  questions over a sweep of cost weights λ (accuracy - λ · cost / coordinator-alone cost); and
  the cost-aware lookahead rule (beyond the paper, :mod:`tandem.classifier.lookahead`), its
  models fitted on the train questions and its own weight chosen on validation for each λ of
  the same sweep; each then replayed on the test questions by the serving decision function;
- **paired bootstrap 95% intervals** (the same resampled questions for every policy) of each
  rule's accuracy minus the best mixture's at that rule's cost, and minus the coordinator
  alone's;
- **per-level AUROC** of the classifier's score for "the answer at this level is right",
  beside the best single feature (its direction and the choice of feature fitted on
  validation, the AUROC measured on test);
- one chart of accuracy against total FLOPs with every curve.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shared.classifier.rules import LookaheadRule, StopRule, ThresholdRule, positional
from tandem.classifier.calibrate import (
    CalibrationSettings,
    has_coordinator_alone,
    resolve_objective,
)
from tandem.classifier.collected import CollectedQuestion, Featurizer
from tandem.classifier.lookahead import sweep_lookahead
from tandem.classifier.policies import (
    CostModel,
    Outcome,
    Spend,
    coordinator_alone,
    fixed_level,
    tandem,
)
from tandem.classifier.thresholds import Calibration, Objective, level_table, sweep_grid

MEASURES = ("generated FLOPs", "total FLOPs", "money")
PRIMARY = 1  # index of total FLOPs: mixtures and intervals are at equal total FLOPs
# Cost weights swept: fine where the fitted rule moves between levels, coarse beyond.
LAMBDAS = (*(round(0.05 * k, 2) for k in range(21)), 1.5, 2.0, 3.0, 5.0)
BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 20240607
SHIPPED = "stop rule (shipped thresholds)"
FITTED = "stop rule fitted"
LOOKAHEAD = "lookahead fitted"
FILES = ("frontier.md", "frontier.json", "frontier.png")


@dataclass(frozen=True)
class PolicyRun:
    """One policy on the test questions: right or wrong, and its cost, per question."""

    name: str
    correct: np.ndarray  # [questions] bool
    cost: np.ndarray  # [questions, MEASURES]
    details: dict[str, Any]

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean())

    @property
    def mean_cost(self) -> np.ndarray:
        return np.asarray(self.cost.mean(axis=0))


def cost_row(costs: CostModel, spend: Spend) -> list[float]:
    return [costs.flops_generated(spend), costs.flops_total(spend), float(costs.money(spend))]


def policy_run(
    name: str, outcomes: Sequence[Outcome], costs: CostModel, **details: Any
) -> PolicyRun:
    return PolicyRun(
        name,
        np.array([o.correct for o in outcomes], dtype=bool),
        np.array([cost_row(costs, o.spend) for o in outcomes], dtype=np.float64),
        details,
    )


def oracle(question: CollectedQuestion) -> Outcome:
    """The cheapest correct level (levels only add cost), or level 0 when none is correct."""
    right = [t for t, result in enumerate(question.levels) if result.answer.correct]
    return fixed_level(question, right[0] if right else 0)


def mixture_accuracy(
    points_cost: np.ndarray, points_accuracy: np.ndarray, budget: np.ndarray
) -> np.ndarray:
    """The best accuracy a random mixture of the given policies reaches at mean cost <= budget.

    ``points_*`` have shape [..., policies] and ``budget`` shape [...] (the leading axes are
    bootstrap samples); NaN where even the cheapest policy costs more than the budget. Mixing
    two policies interpolates linearly between them, so the answer is the upper envelope of
    the points, capped at the most accurate one that fits the budget.
    """
    cost = np.asarray(points_cost, dtype=np.float64)
    accuracy = np.asarray(points_accuracy, dtype=np.float64)
    limit = np.asarray(budget, dtype=np.float64)[..., None]
    single = np.where(cost <= limit, accuracy, -np.inf).max(axis=-1)
    best = single
    count = cost.shape[-1]
    for i in range(count):
        for j in range(count):
            low_c, high_c = cost[..., i : i + 1], cost[..., j : j + 1]
            low_a, high_a = accuracy[..., i : i + 1], accuracy[..., j : j + 1]
            inside = (low_c <= limit) & (limit <= high_c) & (high_c > low_c)
            share = np.where(inside, (limit - low_c) / np.where(inside, high_c - low_c, 1.0), 0.0)
            mixed = np.where(inside, low_a + share * (high_a - low_a), -np.inf)
            best = np.maximum(best, mixed[..., 0])
    return np.asarray(np.where(np.isfinite(best), best, np.nan))


def auroc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Area under the ROC curve (ties count one half); None when one class is missing."""
    labels = labels.astype(bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    start = 0
    while start < len(scores):  # average ranks over ties
        end = start
        while end + 1 < len(scores) and sorted_scores[end + 1] == sorted_scores[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    total = ranks[labels].sum() - positives * (positives + 1) / 2.0
    return float(total / (positives * negatives))


def _features(
    questions: Sequence[CollectedQuestion], level: int, featurizer: Featurizer
) -> np.ndarray:
    return np.array([featurizer.vector(q, level) for q in questions], dtype=np.float64)


def _labels(questions: Sequence[CollectedQuestion], level: int) -> np.ndarray:
    return np.array([q.levels[level].answer.correct for q in questions], dtype=bool)


def level_aurocs(
    validation: Sequence[CollectedQuestion],
    test: Sequence[CollectedQuestion],
    test_scores: np.ndarray,
    featurizer: Featurizer = Featurizer(),
) -> list[dict[str, Any]]:
    """Per level: the classifier's test AUROC and the best single feature's (chosen and
    oriented on validation, so the feature gets no test-set advantage the classifier lacks)."""
    rows = []
    names = featurizer.feature_set.names
    for level in range(test_scores.shape[1]):
        labels = _labels(test, level)
        best: tuple[float, str, int] | None = None
        if validation:
            val_features = _features(validation, level, featurizer)
            val_labels = _labels(validation, level)
            for k, name in enumerate(names):
                area = auroc(val_features[:, k], val_labels)
                if area is None:
                    continue
                sign = 1 if area >= 0.5 else -1
                oriented = max(area, 1.0 - area)
                if best is None or oriented > best[0]:
                    best = (oriented, name, sign)
        feature_test = None
        if best is not None:
            column = _features(test, level, featurizer)[:, names.index(best[1])]
            feature_test = auroc(best[2] * column, labels)
        rows.append(
            {
                "level": level,
                "positives": int(labels.sum()),
                "questions": len(labels),
                "classifier": auroc(test_scores[:, level], labels),
                "best_feature": None if best is None else best[1],
                "best_feature_direction": None if best is None else best[2],
                "best_feature_validation": None if best is None else round(best[0], 4),
                "best_feature_test": feature_test,
            }
        )
    return rows


@dataclass(frozen=True)
class Frontier:
    runs: list[PolicyRun]
    fixed: list[PolicyRun]
    rules: list[PolicyRun]  # the version's rule first, then the threshold and lookahead sweeps
    coordinator: PolicyRun | None
    intervals: dict[str, dict[str, Any]]
    aurocs: list[dict[str, Any]]
    meta: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        reference = self.coordinator.mean_cost if self.coordinator is not None else None
        return {
            "meta": self.meta,
            "measures": list(MEASURES),
            "policies": [
                {
                    "name": run.name,
                    "accuracy": round(run.accuracy, 4),
                    "cost": [float(v) for v in run.mean_cost],
                    "cost_share": None
                    if reference is None
                    else [
                        round(float(c / r), 4) if r else None
                        for c, r in zip(run.mean_cost, reference, strict=True)
                    ],
                    "details": run.details,
                    **(
                        {"intervals": self.intervals[run.name]}
                        if run.name in self.intervals
                        else {}
                    ),
                }
                for run in self.runs
            ],
            "aurocs": self.aurocs,
        }


def bootstrap_intervals(
    rules: Sequence[PolicyRun],
    fixed: Sequence[PolicyRun],
    coordinator: PolicyRun | None,
    samples: int,
    seed: int,
) -> dict[str, dict[str, Any]]:
    """Paired bootstrap: each sample draws the test questions with replacement once, and
    every policy (rules, fixed levels, the coordinator) is measured on that same draw."""
    n = len(fixed[0].correct)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(samples, n))
    fixed_accuracy = np.stack([run.correct[draws].mean(axis=1) for run in fixed], axis=-1)
    fixed_cost = np.stack([run.cost[draws].mean(axis=1) for run in fixed], axis=-1)
    coordinator_accuracy = (
        coordinator.correct[draws].mean(axis=1) if coordinator is not None else None
    )
    point_fixed_cost = np.stack([run.mean_cost for run in fixed], axis=-1)
    point_fixed_accuracy = np.array([run.accuracy for run in fixed])
    out: dict[str, dict[str, Any]] = {}
    for rule in rules:
        accuracy = rule.correct[draws].mean(axis=1)
        cost = rule.cost[draws].mean(axis=1)
        versus_mixture = {}
        for m, measure in enumerate(MEASURES):
            mix_point = mixture_accuracy(
                point_fixed_cost[m], point_fixed_accuracy, np.array(rule.mean_cost[m])
            )
            mix = mixture_accuracy(fixed_cost[:, m, :], fixed_accuracy, cost[:, m])
            delta = accuracy - mix
            versus_mixture[measure] = {
                "mixture_accuracy": None if np.isnan(mix_point) else round(float(mix_point), 4),
                "difference": None
                if np.isnan(mix_point)
                else round(rule.accuracy - float(mix_point), 4),
                "interval": _interval(delta),
            }
        entry: dict[str, Any] = {"versus_mixture": versus_mixture}
        if coordinator is not None and coordinator_accuracy is not None:
            entry["versus_coordinator"] = {
                "difference": round(rule.accuracy - coordinator.accuracy, 4),
                "interval": _interval(accuracy - coordinator_accuracy),
            }
        out[rule.name] = entry
    return out


def _interval(values: np.ndarray) -> list[float] | None:
    finite = values[np.isfinite(values)]
    if len(finite) < 0.95 * len(values):  # a mixture that cheap often did not exist
        return None
    low, high = np.percentile(finite, [2.5, 97.5])
    return [round(float(low), 4), round(float(high), 4)]


def shipped_name(rule: StopRule) -> str:
    if isinstance(rule, ThresholdRule):
        return SHIPPED
    return f"stop rule (shipped lookahead, rule λ={rule.lam:g})"


def compute_frontier(
    test: Sequence[CollectedQuestion],
    validation: Sequence[CollectedQuestion],
    test_scores: np.ndarray,
    validation_scores: np.ndarray,
    rule: StopRule,
    costs: CostModel,
    *,
    train: Sequence[CollectedQuestion] = (),
    fit_measure: str = "flops",
    lambdas: Sequence[float] = LAMBDAS,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = BOOTSTRAP_SEED,
    featurizer: Featurizer = Featurizer(),
) -> Frontier:
    levels = len(test[0].levels)
    budgets = [r.budget for r in test[0].levels]
    vectors = [featurizer.vectors(q) for q in test]
    fixed = [
        policy_run(
            "executor alone (level 0)" if t == 0 else f"fixed level {t}",
            [fixed_level(q, t) for q in test],
            costs,
        )
        for t in range(levels)
    ]
    coordinator = (
        policy_run("coordinator alone", [coordinator_alone(q) for q in test], costs)
        if has_coordinator_alone(test)
        else None
    )
    rules = [
        policy_run(
            shipped_name(rule),
            [tandem(q, test_scores[i], rule, vectors[i]) for i, q in enumerate(test)],
            costs,
            rule=rule.kind,
            **(
                {"thresholds": [round(rule.threshold(b), 6) for b in budgets]}
                if isinstance(rule, ThresholdRule)
                else {"rule_lambda": rule.lam}
            ),
        )
    ]
    if validation:
        metric = costs.metric(fit_measure)
        # The calibration's own unit of cost: the coordinator alone's (or the last level's).
        settings = CalibrationSettings(lam=1.0, cost=fit_measure)
        reference = resolve_objective(validation, settings, metric).reference_cost
        objectives = [Objective(lam=lam, reference_cost=reference) for lam in lambdas]
        sweep = sweep_grid(level_table(validation, validation_scores, metric))
        # Neighbouring weights that fit the same thresholds are one rule: one row, its λs.
        fitted_by_thresholds: dict[tuple[float, ...], list[float]] = {}
        fits: dict[tuple[float, ...], Calibration] = {}
        for objective in objectives:
            fitted = sweep.pick(objective)
            key = tuple(fitted.thresholds)
            fitted_by_thresholds.setdefault(key, []).append(float(objective.lam or 0.0))
            fits.setdefault(key, fitted)
        for key, weights in fitted_by_thresholds.items():
            fitted = fits[key]
            chosen = positional(budgets, fitted.thresholds)
            rules.append(
                policy_run(
                    f"{FITTED} at λ={_weights(weights)}",
                    [tandem(q, test_scores[i], chosen) for i, q in enumerate(test)],
                    costs,
                    rule=chosen.kind,
                    lambdas=weights,
                    thresholds=[round(v, 6) for v in fitted.thresholds],
                    validation_accuracy=round(fitted.accuracy, 4),
                )
            )
        if train:
            rules += _lookahead_runs(
                train,
                validation,
                validation_scores,
                test,
                test_scores,
                vectors,
                costs,
                objectives,
                metric,
                reference,
                featurizer,
            )
    best = policy_run("oracle (cheapest correct level)", [oracle(q) for q in test], costs)
    runs = [*([coordinator] if coordinator else []), *fixed, best, *rules]
    intervals = bootstrap_intervals(rules, fixed, coordinator, samples, seed)
    meta = {
        "test_questions": len(test),
        "validation_questions": len(validation),
        "train_questions": len(train),
        "fit_measure": fit_measure,
        "lambdas": list(lambdas),
        "bootstrap_samples": samples,
        "bootstrap_seed": seed,
        "mixture_measure": MEASURES[PRIMARY],
    }
    return Frontier(
        runs,
        fixed,
        rules,
        coordinator,
        intervals,
        level_aurocs(validation, test, test_scores, featurizer),
        meta,
    )


def _lookahead_runs(
    train: Sequence[CollectedQuestion],
    validation: Sequence[CollectedQuestion],
    validation_scores: np.ndarray,
    test: Sequence[CollectedQuestion],
    test_scores: np.ndarray,
    vectors: Sequence[Sequence[Sequence[float]]],
    costs: CostModel,
    objectives: Sequence[Objective],
    metric: Callable[[Spend], float],
    reference: float,
    featurizer: Featurizer,
) -> list[PolicyRun]:
    """The lookahead rule for each objective of the sweep: its own λ chosen on validation;
    objectives that choose the same λ are one row."""
    sweep = sweep_lookahead(train, validation, validation_scores, metric, reference, featurizer)
    by_rule: dict[float, list[float]] = {}
    for objective in objectives:
        by_rule.setdefault(sweep.pick(objective).rule.lam, []).append(float(objective.lam or 0))
    runs = []
    for rule_lambda, weights in by_rule.items():
        rule: LookaheadRule = sweep.rule(rule_lambda)
        index = sweep.lambdas.index(rule_lambda)
        runs.append(
            policy_run(
                f"{LOOKAHEAD} at λ={_weights(weights)} (rule λ={rule_lambda:g})",
                [tandem(q, test_scores[i], rule, vectors[i]) for i, q in enumerate(test)],
                costs,
                rule=rule.kind,
                lambdas=weights,
                rule_lambda=rule_lambda,
                validation_accuracy=round(float(sweep.accuracy[index]), 4),
            )
        )
    return runs


def _weights(values: Sequence[float]) -> str:
    return f"{values[0]:g}" if len(values) == 1 else f"{values[0]:g} to {values[-1]:g}"


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.1f}"


def _versus(entry: dict[str, Any] | None) -> str:
    if entry is None or entry.get("difference") is None:
        return "-"
    interval = entry.get("interval")
    bounds = "" if interval is None else f" [{_signed(interval[0])}, {_signed(interval[1])}]"
    return f"{_signed(entry['difference'])}{bounds}"


def frontier_markdown(frontier: Frontier, title: str) -> str:
    data = frontier.to_dict()
    meta = data["meta"]
    lines = [
        f"# Frontier: {title}",
        "",
        f"{meta['test_questions']} test questions. Stop-rule thresholds fitted on "
        f"{meta['validation_questions']} validation questions (cost: {meta['fit_measure']}) "
        f"for each λ in {meta['lambdas']} (accuracy - λ · cost / coordinator-alone cost), "
        "then replayed on the test questions by the serving rule; for the same λs the "
        "lookahead rule (beyond the paper: stop when no later level's predicted gain in "
        f"P(right) is worth its cost; its models fitted on {meta['train_questions']} train "
        "questions, its own weight, rule λ, chosen on validation). Costs are means per "
        "question: FLOPs = 2 · parameters · tokens, generated only (the paper's measure) and "
        "total (prompt + generated); money from the collected prices; in brackets the share "
        "of the coordinator alone. The mixture column: accuracy minus that of the best random "
        "mixture of fixed levels at the same total FLOPs, in points, with a paired bootstrap "
        f"95% interval ({meta['bootstrap_samples']} samples; '-' where no mixture is that "
        "cheap).",
        "",
        "| policy | accuracy | GFLOPs generated | GFLOPs total | $ per 1k questions "
        "| vs best fixed-level mixture (points) | vs coordinator alone (points) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for policy in data["policies"]:
        share = policy["cost_share"] or [None, None, None]
        cells = []
        for m, value in enumerate(policy["cost"]):
            shown = f"{value * 1000:.4f}" if m == 2 else f"{value / 1e9:.3f}"
            cells.append(shown + ("" if share[m] is None else f" ({100 * share[m]:.1f}%)"))
        intervals = policy.get("intervals") or {}
        mixture = (intervals.get("versus_mixture") or {}).get(MEASURES[PRIMARY])
        lines.append(
            f"| {policy['name']} | {100 * policy['accuracy']:.1f}% | {cells[0]} | {cells[1]} "
            f"| {cells[2]} | {_versus(mixture)} | {_versus(intervals.get('versus_coordinator'))} |"
        )
    shipped = data["policies"][len(frontier.runs) - len(frontier.rules)]
    lines += [
        "",
        "The shipped rule against the best mixture of fixed levels at its cost, per cost "
        "measure (points, 95% interval):",
        "",
        "| cost measure | mixture accuracy at the rule's cost | rule minus mixture |",
        "|---|---:|---:|",
    ]
    for measure in MEASURES:
        entry = shipped["intervals"]["versus_mixture"][measure]
        mixture_text = (
            "-" if entry["mixture_accuracy"] is None else f"{100 * entry['mixture_accuracy']:.1f}%"
        )
        lines.append(f"| {measure} | {mixture_text} | {_versus(entry)} |")
    lines += [
        "",
        "Per-level AUROC on the test questions (positive: the executor's answer at that "
        "level is right). The best single feature is chosen, and its direction fixed, on "
        "the validation questions.",
        "",
        "| level | right / questions | classifier | best single feature | its AUROC |",
        "|---:|---:|---:|---|---:|",
    ]
    for row in data["aurocs"]:
        lines.append(
            f"| {row['level']} | {row['positives']} / {row['questions']} "
            f"| {_area(row['classifier'])} | {row['best_feature'] or '-'} "
            f"| {_area(row['best_feature_test'])} |"
        )
    return "\n".join(lines) + "\n"


def _area(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def frontier_chart(frontier: Frontier, path: Path, title: str) -> None:
    """Accuracy against total FLOPs: fixed levels, their mixture envelope, the fitted rules,
    the shipped rule, the oracle and the coordinator alone, on one chart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def point(run: PolicyRun) -> tuple[float, float]:
        return float(run.mean_cost[PRIMARY]) / 1e9, 100 * run.accuracy

    fig, ax = plt.subplots(figsize=(7.5, 5))
    fixed_points = [point(run) for run in frontier.fixed]
    costs = np.array([run.mean_cost[PRIMARY] for run in frontier.fixed])
    accuracy = np.array([run.accuracy for run in frontier.fixed])
    budgets = np.linspace(costs.min(), costs.max(), 200)
    envelope = mixture_accuracy(np.broadcast_to(costs, (200, len(costs))), accuracy, budgets)
    ax.plot(
        budgets / 1e9, 100 * envelope, "--", color="tab:gray", label="best mixture of fixed levels"
    )
    ax.plot(*zip(*fixed_points, strict=True), "o", color="tab:gray", label="fixed levels")
    for level, (x, y) in enumerate(fixed_points):
        ax.annotate(
            f"level {level}", (x, y), textcoords="offset points", xytext=(6, -10), fontsize=8
        )
    for prefix, colour, label in (
        (FITTED, "tab:blue", "thresholds, λ sweep"),
        (LOOKAHEAD, "tab:purple", "lookahead, λ sweep"),
    ):
        swept = sorted(point(run) for run in frontier.rules[1:] if run.name.startswith(prefix))
        if swept:
            ax.plot(*zip(*swept, strict=True), "x-", color=colour, alpha=0.6, label=label)
    ax.plot(
        *point(frontier.rules[0]), "*", color="tab:blue", markersize=14, label="stop rule (shipped)"
    )
    oracle_run = next(run for run in frontier.runs if run.name.startswith("oracle"))
    ax.plot(*point(oracle_run), "D", color="tab:green", label="oracle")
    if frontier.coordinator is not None:
        ax.plot(
            *point(frontier.coordinator),
            "s",
            color="tab:red",
            markersize=9,
            label="coordinator alone",
        )
    ax.set_xlabel("total GFLOPs per question (2 · parameters · prompt and generated tokens)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_frontier(frontier: Frontier, results_dir: Path, title: str) -> None:
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "frontier.md").write_text(frontier_markdown(frontier, title), encoding="utf-8")
    (results_dir / "frontier.json").write_text(
        json.dumps(frontier.to_dict(), indent=2) + "\n", encoding="utf-8"
    )
    frontier_chart(frontier, results_dir / "frontier.png", title)
