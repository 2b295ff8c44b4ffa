"""Does a stop rule on the executor's own answer confidence transfer from shop to ages?

The answer-confidence rule, on pair v2: at level k = 0, 1, 2, ... the executor answers with the
insights so far; the job stops at the first level whose answer's mean generated-token log-prob
reaches τ_k (or where the insights finished, as the serving path stops there too; the last
level always stops) and that level's answer is the job's answer. No scoring passes: the
confidence comes with the answer. Each question's cost is the coordinator's extensions up to
the stopping level plus the executor's answer call at every level visited, each answer charged
as its policy's first call on the engine (:func:`tandem.classifier.policies.standalone` with the
shared prompt layout only): conservative, as a level's answer could reuse the previous level's
prompt up to where the insights grow.

Thresholds are fitted only on the shop validation questions, by an exhaustive grid (per level:
quantiles of that level's validation confidences, plus "always stop" and "never stop"), against
generated FLOPs as the shipped calibration and ``frontier`` do: for each cost weight λ of
:data:`tandem.classifier.frontier.LAMBDAS` (accuracy - λ · cost / coordinator-alone cost), and
"cheapest with the coordinator alone's accuracy" as the shipped version is calibrated. Each
fitted rule is then replayed, nothing refitted, on the shop test questions and the ages test
questions. Printed: the per-level AUROC of the confidence for "this level's answer is right"
on both test sets, then one table: per rule and domain, accuracy, total FLOPs as a share of the
coordinator alone, accuracy minus the best random mixture of fixed levels at equal total FLOPs
with its paired bootstrap 95% interval (:mod:`tandem.classifier.frontier`'s functions), and the
share of the shop gain kept on ages (where there is a shop gain: >= +5 points, interval above 0).

    python benchmarks/confidence_rule_study.py      # about 6 s on one core
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tandem.classifier.calibrate import CalibrationSettings, resolve_objective
from tandem.classifier.collected import CollectedQuestion, of_split, read_collected
from tandem.classifier.frontier import (
    BOOTSTRAP_SAMPLES,
    BOOTSTRAP_SEED,
    LAMBDAS,
    MEASURES,
    PRIMARY,
    PolicyRun,
    auroc,
    bootstrap_intervals,
    policy_run,
)
from tandem.classifier.policies import (
    CostModel,
    Outcome,
    Spend,
    coordinator_alone,
    executor_call,
    executor_shared_prefix,
    extensions_up_to,
    fixed_level,
    standalone,
)
from tandem.classifier.thresholds import Objective, choose

DATA = Path(__file__).resolve().parents[1] / "models" / "classifier" / "data"
QUANTILES = 24  # per level; the last level's threshold does not matter (it always stops)
ALWAYS, NEVER = -np.inf, np.inf
CALIBRATED = "cheapest with coordinator accuracy"
MEANINGFUL_GAIN = 0.05


def confidences(questions: Sequence[CollectedQuestion]) -> np.ndarray:
    """[questions, levels] mean generated-token log-probs; a missing one never stops."""
    return np.array(
        [
            [-np.inf if r.answer.mean_logprob is None else r.answer.mean_logprob for r in q.levels]
            for q in questions
        ]
    )


def answers_up_to(question: CollectedQuestion, level: int) -> Spend:
    """The executor's answer calls at levels 0..``level``, each charged standalone."""
    shared = executor_shared_prefix(question)
    total = Spend()
    for result in question.levels[: level + 1]:
        total += executor_call(standalone(result.answer.call, shared))
    return total


def stop_levels(conf: np.ndarray, finished: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """[settings, questions] stopping level of each threshold row of ``grid``."""
    hard = finished.copy()
    hard[:, -1] = True
    stop = (conf[None, :, :] >= grid[:, None, :]) | hard[None, :, :]
    return np.asarray(stop.argmax(axis=2))


def confidence_rule(question: CollectedQuestion, thresholds: Sequence[float]) -> Outcome:
    conf = confidences([question])
    finished = np.array([[r.finished for r in question.levels]])
    level = int(stop_levels(conf, finished, np.array([thresholds]))[0, 0])
    spend = extensions_up_to(question, level) + answers_up_to(question, level)
    return Outcome(question.levels[level].answer.correct, spend, level, level)


def fit_grid(
    validation: Sequence[CollectedQuestion], cost: Callable[[Spend], float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every threshold setting with its validation accuracy and mean cost."""
    conf = confidences(validation)
    levels = conf.shape[1]
    finished = np.array([[r.finished for r in q.levels] for q in validation])
    correct = np.array([[r.answer.correct for r in q.levels] for q in validation])
    spent = np.array(
        [
            [cost(extensions_up_to(q, t) + answers_up_to(q, t)) for t in range(levels)]
            for q in validation
        ]
    )
    candidates = []
    for t in range(levels - 1):
        finite = conf[:, t][np.isfinite(conf[:, t])]
        quantiles = np.quantile(finite, np.linspace(0.0, 1.0, QUANTILES))
        candidates.append(np.unique(np.concatenate([[ALWAYS, NEVER], quantiles])))
    candidates.append(np.array([NEVER]))
    grid = np.array(list(itertools.product(*candidates)))
    stop = stop_levels(conf, finished, grid)
    rows = np.arange(len(validation))[None, :]
    return grid, correct[rows, stop].mean(axis=1), spent[rows, stop].mean(axis=1)


def fitted_rules(
    validation: Sequence[CollectedQuestion], costs: CostModel
) -> list[tuple[str, list[float]]]:
    """(name, thresholds): the calibrated rule, then one per distinct λ-fitted setting."""
    settings = CalibrationSettings()  # the shipped calibration: coordinator accuracy, generated
    metric = costs.metric(settings.cost)
    objective = resolve_objective(validation, settings, metric)
    grid, accuracy, spent = fit_grid(validation, metric)
    out = [(CALIBRATED, [float(v) for v in grid[choose(objective, accuracy, spent).index]])]
    by_setting: dict[tuple[float, ...], list[float]] = {}
    for lam in LAMBDAS:
        weighted = Objective(lam=lam, reference_cost=objective.reference_cost)
        key = tuple(float(v) for v in grid[choose(weighted, accuracy, spent).index])
        by_setting.setdefault(key, []).append(lam)
    for key, weights in by_setting.items():
        span = f"{weights[0]:g}" if len(weights) == 1 else f"{weights[0]:g}-{weights[-1]:g}"
        out.append((f"λ={span}", list(key)))
    return out


def measure(
    questions: Sequence[CollectedQuestion],
    rules: Sequence[tuple[str, list[float]]],
    costs: CostModel,
) -> dict[str, dict[str, Any]]:
    """Per rule: accuracy, total-FLOPs share, gain over the mixture with its interval."""
    levels = len(questions[0].levels)
    fixed = [
        policy_run(f"fixed level {t}", [fixed_level(q, t) for q in questions], costs)
        for t in range(levels)
    ]
    coordinator = policy_run("coordinator alone", [coordinator_alone(q) for q in questions], costs)
    runs: list[PolicyRun] = [
        policy_run(name, [confidence_rule(q, thresholds) for q in questions], costs)
        for name, thresholds in rules
    ]
    intervals = bootstrap_intervals(runs, fixed, coordinator, BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED)
    out = {}
    for run in runs:
        versus = intervals[run.name]["versus_mixture"][MEASURES[PRIMARY]]
        out[run.name] = {
            "accuracy": run.accuracy,
            "share": float(run.mean_cost[PRIMARY] / coordinator.mean_cost[PRIMARY]),
            "gain": versus["difference"],
            "interval": versus["interval"],
        }
    return out


def level_aurocs(questions: Sequence[CollectedQuestion]) -> list[float | None]:
    conf = confidences(questions)
    correct = np.array([[r.answer.correct for r in q.levels] for q in questions])
    return [auroc(conf[:, t], correct[:, t]) for t in range(conf.shape[1])]


def _points(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.1f}"


def _cell(entry: dict[str, Any]) -> str:
    interval = entry["interval"]
    bounds = "" if interval is None else f" [{_points(interval[0])}, {_points(interval[1])}]"
    return (
        f"{100 * entry['accuracy']:.1f}% | {100 * entry['share']:.1f}% "
        f"| {_points(entry['gain'])}{bounds}"
    )


def _kept(in_domain: dict[str, Any], across: dict[str, Any]) -> str:
    """Ages gain / shop gain, only where there is a shop gain to keep (>= +5 points, its
    interval above 0, as in ``transfer_study``): a ratio of two near-zero gains means nothing."""
    gain, interval = in_domain["gain"], in_domain["interval"]
    if gain is None or gain < MEANINGFUL_GAIN or interval is None or interval[0] <= 0:
        return "no shop gain"
    if across["gain"] is None:
        return "-"
    return f"{100 * across['gain'] / gain:.0f}%"


def main() -> None:
    header, shop = read_collected(DATA / "lab-v2-shop.jsonl")
    _, ages = read_collected(DATA / "lab-v2-ages.jsonl")
    costs = CostModel.from_header(header)
    validation, shop_test = of_split(shop, "validation"), of_split(shop, "test")
    ages_test = of_split(ages, "test")
    rules = fitted_rules(validation, costs)
    for domain, questions in (("shop", shop_test), ("ages", ages_test)):
        areas = ", ".join("-" if a is None else f"{a:.3f}" for a in level_aurocs(questions))
        print(f"AUROC of mean_logprob per level, {domain} test: {areas}")
    in_domain, across = measure(shop_test, rules, costs), measure(ages_test, rules, costs)
    print()
    print(
        "| rule (fitted on shop validation) | thresholds τ_0..τ_2 | shop accuracy | total FLOPs "
        "| vs mixture (points, 95%) | ages accuracy | total FLOPs | vs mixture (points, 95%) "
        "| kept |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, thresholds in rules:
        shown = ", ".join(f"{t:.3g}" for t in thresholds[:-1])
        kept = _kept(in_domain[name], across[name])
        print(f"| {name} | {shown} | {_cell(in_domain[name])} | {_cell(across[name])} | {kept} |")


if __name__ == "__main__":
    main()
