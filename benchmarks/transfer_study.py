"""Does a sufficiency classifier trained on pair v2's shop questions transfer to ages?

For each feature set and model: fitted on the shop train questions (early stopping on shop
validation), thresholds calibrated on shop validation as the shipped version was (cheapest with
the coordinator alone's accuracy, generated FLOPs), then replayed with nothing refitted on the
shop test questions (in domain) and the ages test questions (across domains) by
:func:`tandem.classifier.frontier.compute_frontier`. Printed per combination, one JSON line:
accuracy, total FLOPs as a share of the coordinator alone, accuracy minus the best mixture of
fixed levels at equal total FLOPs with its paired bootstrap 95% interval, the best such gain
over the λ-fitted threshold rules, per-level AUROC, and ``kept`` = ages gain / shop gain (the
target: >= 0.7, with a shop gain >= +5 points whose interval is above 0).

The feature sets, computed from the collected prompt log-probs (the span ones as the scorer
does: the insights begin where level 0's prompt has its end marker, and the marker and what
follows it, ``</I>\nS:``, are the suffix):

- ``shipped15``: :func:`shared.features.features`, the shipped list;
- ``no_scale``: that list without ``perplexity`` and ``seq_length``;
- ``span``: the served ``insight-span`` set (:data:`shared.features.SPAN_FEATURE_NAMES`):
  level, insight-span length, mean/min/max/std over the insight span and the suffix, the end
  marker's log-prob;
- ``delta0``: ``span`` plus the suffix statistics and whole-prompt mean, last-quarter mean
  and min against the same question's level 0 (needs level 0's log-probs at each level);
- ``delta_only``: level and those differences only; ``suffix_delta``: level, span length,
  the end marker and suffix mean, each also against level 0; ``end``: level and the end
  marker's log-prob alone;
- ``coord``: what the coordinator did (level, insights finished, insight tokens), no log-probs;
  ``coord_delta`` and ``coord_shipped``: that with ``delta_only`` or the shipped list.

    python benchmarks/transfer_study.py [SETS] [MODELS]   # comma-separated; models: logreg,
                                                          # mlp16, mlp64x32 (the shipped shape)
        [--shop FILE --ages FILE]   # other collected files (benchmarks/rescore_executor.py)
        [--out FILE.jsonl] [--chart FILE.png]   # the lines, and shop gain against ages gain
        [--margin]   # each threshold moved to the middle of the validation gap below it
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shared.classifier.rules import positional
from shared.features import FEATURE_NAMES, INSIGHT_SPAN, features
from tandem.classifier import train
from tandem.classifier.calibrate import CalibrationSettings, resolve_objective
from tandem.classifier.collected import (
    SUFFIX_TOKENS,
    CollectedQuestion,
    Featurizer,
    LevelResult,
    of_split,
    read_collected,
)
from tandem.classifier.frontier import SHIPPED, Frontier, compute_frontier
from tandem.classifier.policies import CostModel
from tandem.classifier.thresholds import fit_thresholds, level_table

DATA = Path(__file__).resolve().parents[1] / "models" / "classifier" / "data"
# The lab layout's insight span, found in collected files as the scorer finds it in prompts.
SPAN = Featurizer(INSIGHT_SPAN, SUFFIX_TOKENS["lab-v1"])
SHIPPED_SET = Featurizer()


def f_shipped(q: CollectedQuestion, r: LevelResult) -> list[float]:
    return SHIPPED_SET.vector(q, r.level)


DROP = {"perplexity", "seq_length"}
KEEP = [i for i, name in enumerate(FEATURE_NAMES) if name not in DROP]


def f_no_scale(q: CollectedQuestion, r: LevelResult) -> list[float]:
    v = f_shipped(q, r)
    return [v[i] for i in KEEP]


def f_span(q: CollectedQuestion, r: LevelResult) -> list[float]:
    """The ``insight-span`` feature set the scorer serves."""
    return SPAN.vector(q, r.level)


def f_delta0(q: CollectedQuestion, r: LevelResult) -> list[float]:
    mine = f_span(q, r)
    zero = f_span(q, q.levels[0])
    # suffix stats and the end-marker token against level 0's (same question, no insights)
    deltas = [mine[k] - zero[k] for k in range(6, 11)]
    whole = features(r.logprobs, r.level, r.insight_tokens)
    whole0 = features(q.levels[0].logprobs, 0, 0)
    idx = {name: i for i, name in enumerate(FEATURE_NAMES)}
    deltas += [whole[idx[n]] - whole0[idx[n]] for n in ("mean", "last_quarter_mean", "min")]
    return [*mine, *deltas]


def f_delta_only(q: CollectedQuestion, r: LevelResult) -> list[float]:
    full = f_delta0(q, r)
    return [full[0], *full[11:]]


def f_suffix_delta(q: CollectedQuestion, r: LevelResult) -> list[float]:
    """Level, insight span length, and the end marker's log-prob and the suffix mean, each
    also against level 0's."""
    v = f_delta0(q, r)
    return [v[0], v[1], v[10], v[6], v[15], v[11]]


def f_end(q: CollectedQuestion, r: LevelResult) -> list[float]:
    """Level and the end marker's log-prob alone: whether the executor expected the insights
    to end there."""
    v = f_span(q, r)
    return [v[0], v[10]]


def f_coord(q: CollectedQuestion, r: LevelResult) -> list[float]:
    """What the coordinator did, not the executor's log-probs: level, finished, tokens."""
    return [float(r.level), float(r.finished), float(r.insight_tokens)]


def f_coord_delta(q: CollectedQuestion, r: LevelResult) -> list[float]:
    return [*f_coord(q, r), *f_delta_only(q, r)[1:]]


def f_coord_shipped(q: CollectedQuestion, r: LevelResult) -> list[float]:
    return [float(r.finished), *f_shipped(q, r)]


FEATURE_SETS: dict[str, Callable[[CollectedQuestion, LevelResult], list[float]]] = {
    "shipped15": f_shipped,
    "no_scale": f_no_scale,
    "span": f_span,
    "delta0": f_delta0,
    "delta_only": f_delta_only,
    "suffix_delta": f_suffix_delta,
    "end": f_end,
    "coord": f_coord,
    "coord_delta": f_coord_delta,
    "coord_shipped": f_coord_shipped,
}


def matrix(questions: Sequence[CollectedQuestion], fn: Callable[..., list[float]]) -> np.ndarray:
    return np.array([[fn(q, r) for r in q.levels] for q in questions], dtype=np.float64)


def rows(questions: Sequence[CollectedQuestion], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for i, q in enumerate(questions):
        for r in q.levels[: q.reachable]:
            xs.append(x[i, r.level])
            ys.append(float(r.answer.correct))
    return np.array(xs), np.array(ys)


def fit_logreg(
    x: np.ndarray, y: np.ndarray, l2: float = 1e-2
) -> Callable[[np.ndarray], np.ndarray]:
    mean, std = x.mean(0), x.std(0)
    std[std < 1e-9] = 1.0
    z = np.hstack([(x - mean) / std, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    for _ in range(50):  # Newton steps
        p = 1 / (1 + np.exp(-z @ w))
        grad = z.T @ (p - y) + l2 * np.r_[w[:-1], 0]
        hess = (z * (p * (1 - p))[:, None]).T @ z + l2 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break

    def predict(a: np.ndarray) -> np.ndarray:
        za = np.hstack([(a - mean) / std, np.ones((len(a), 1))])
        return 1 / (1 + np.exp(-za @ w))

    return predict


def fit_mlp(
    x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray, hidden: Sequence[int]
) -> Callable[[np.ndarray], np.ndarray]:
    """The shipped trainer's fit (:func:`tandem.classifier.train.fit_mlp`) at another shape."""
    return train.fit_mlp(x, y, xv, yv, hidden).predict


def scores(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    q, levels, k = x.shape
    return predict(x.reshape(q * levels, k)).reshape(q, levels)


def summary(frontier: Frontier) -> dict[str, Any]:
    """The calibrated rule's figures at equal total FLOPs, and the best λ-fitted rule's gain."""
    run = next(r for r in frontier.rules if r.name == SHIPPED)
    versus = frontier.intervals[SHIPPED]["versus_mixture"]["total FLOPs"]
    assert frontier.coordinator is not None
    gains = [
        frontier.intervals[r.name]["versus_mixture"]["total FLOPs"]["difference"]
        for r in frontier.rules[1:]
    ]
    return {
        "accuracy": round(run.accuracy, 4),
        "total_share": round(float(run.mean_cost[1] / frontier.coordinator.mean_cost[1]), 4),
        "gain": versus["difference"],
        "interval": versus["interval"],
        "aurocs": [
            None if a["classifier"] is None else round(a["classifier"], 3) for a in frontier.aurocs
        ],
        "fitted_best_gain": max((g for g in gains if g is not None), default=None),
    }


def with_margin(thresholds: Sequence[float], val_scores: np.ndarray) -> list[float]:
    """Each level's threshold moved down to the middle of the gap below it in that level's
    validation scores: the same decisions on validation, a margin for scores that shift."""
    out = []
    for level, threshold in enumerate(thresholds):
        below = val_scores[:, level][val_scores[:, level] < threshold]
        out.append(float((threshold + below.max()) / 2) if below.size else float(threshold))
    return out


def chart(results: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    """Each combination's gain over the fixed-level mixture on ages against its gain on shop,
    with the line where ages keeps 70% of the shop gain."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    top = max([0.05] + [r["shop"]["gain"] * 100 for r in results.values()])
    ax.plot([0, top], [0, 0.7 * top], color="grey", linestyle="--", label="ages keeps 70%")
    ax.axhline(0, color="black", linewidth=0.6)
    for name, result in results.items():
        x, y = result["shop"]["gain"] * 100, result["ages"]["gain"] * 100
        low, high = (v * 100 for v in result["ages"]["interval"])
        ax.errorbar(x, y, yerr=[[y - low], [high - y]], fmt="o", capsize=3)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel("shop test: gain over the best fixed-level mixture (points, total FLOPs)")
    ax.set_ylabel("ages test, not trained on: gain (points, 95% interval)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sets", nargs="?", default=",".join(FEATURE_SETS))
    parser.add_argument("models", nargs="?", default="logreg,mlp16,mlp64x32")
    parser.add_argument("--shop", type=Path, default=DATA / "lab-v2-shop.jsonl")
    parser.add_argument("--ages", type=Path, default=DATA / "lab-v2-ages.jsonl")
    parser.add_argument("--out", type=Path, default=None, help="Also write the lines here.")
    parser.add_argument("--chart", type=Path, default=None, help="Draw the gains here.")
    parser.add_argument(
        "--margin", action="store_true", help="Thresholds in the middle of the gap below them."
    )
    args = parser.parse_args()
    results: dict[str, dict[str, Any]] = {}
    header, shop = read_collected(args.shop)
    _, ages = read_collected(args.ages)
    train, val, test = (of_split(shop, s) for s in ("train", "validation", "test"))
    ages_test = of_split(ages, "test")
    costs = CostModel.from_header(header)
    settings = CalibrationSettings()  # the shipped version's: coordinator accuracy, generated
    metric = costs.metric(settings.cost)
    objective = resolve_objective(val, settings, metric)
    budgets = list(header.levels)
    for name in args.sets.split(","):
        fn = FEATURE_SETS[name]
        xs = {
            k: matrix(v, fn)
            for k, v in {"train": train, "val": val, "test": test, "ages": ages_test}.items()
        }
        x, y = rows(train, xs["train"])
        xv, yv = rows(val, xs["val"])
        for model in args.models.split(","):
            if model == "logreg":
                predict = fit_logreg(x, y)
            elif model == "mlp16":
                predict = fit_mlp(x, y, xv, yv, (16,))
            else:
                predict = fit_mlp(x, y, xv, yv, (64, 32))
            s = {k: scores(predict, v) for k, v in xs.items()}
            fit = fit_thresholds(level_table(val, s["val"], metric), objective)
            thresholds = with_margin(fit.thresholds, s["val"]) if args.margin else fit.thresholds
            rule = positional(budgets, thresholds)
            result: dict[str, Any] = {"thresholds": [round(t, 4) for t in thresholds]}
            for dom, questions in (("shop", test), ("ages", ages_test)):
                frontier = compute_frontier(
                    questions,
                    val,
                    s["test" if dom == "shop" else "ages"],
                    s["val"],
                    rule,
                    costs,
                    samples=1000,
                )
                result[dom] = summary(frontier)
            gain_in, gain_out = result["shop"]["gain"], result["ages"]["gain"]
            result["kept"] = None if not gain_in else round(gain_out / gain_in, 3)
            results[f"{name}/{model}"] = result
            print(f"{name}/{model}", json.dumps(result), flush=True)
    if args.out is not None:
        args.out.write_text("".join(json.dumps({"run": k, **v}) + "\n" for k, v in results.items()))
    if args.chart is not None:
        chart(results, args.chart, f"{header.executor.model}: {args.shop.name} → {args.ages.name}")


if __name__ == "__main__":
    main()
