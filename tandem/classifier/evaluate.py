"""Evaluate: the comparison table on the test questions, computed offline from a collected file.

Rows: the coordinator alone, the executor alone (level 0), each fixed insight level, a cascade
baseline (the executor first; the coordinator answers when the executor's mean generated-token
log-prob is below a threshold fitted on validation by the calibration objective) and Tandem with
the version's own stop rule. Each with accuracy, mean generated tokens per model, scoring passes,
FLOPs (2 · parameters · tokens; generated and prompt apart), money, and cost as a share of the
coordinator alone. Written to a results folder as ``table.md``, ``results.json`` and
``cost_vs_accuracy.png``, and ``savings_baseline.json``: the coordinator alone's mean cost per
question by job domain, the file ``TANDEM_SAVINGS_BASELINE_FILE`` takes for the savings report.
A model evaluated on a file of another domain than it was trained on is the cross-domain test
(no retraining). Next to the table, ``frontier.md``/``.json``/``.png`` hold the honest frontier
(:mod:`tandem.classifier.frontier`): the stop rules (the paper's thresholds and the lookahead
rule, each over a sweep of cost weights) against the best mixture of fixed levels at equal cost
and the oracle, with bootstrap intervals, per-level AUROC beside the best single feature, and
generated FLOPs, total FLOPs and money.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from shared.classifier import ModelMetadata, read_metadata
from shared.classifier.rules import THRESHOLD, StopRule, calibrated_for
from shared.classifier.runtime import Served
from tandem.classifier.calibrate import (
    CalibrationSettings,
    has_coordinator_alone,
    resolve_objective,
)
from tandem.classifier.collected import (
    CollectedQuestion,
    CollectHeader,
    of_split,
    read_collected,
    validation_questions,
)
from tandem.classifier.frontier import compute_frontier, write_frontier
from tandem.classifier.lookahead import train_questions
from tandem.classifier.model_files import read_card, update_card
from tandem.classifier.policies import (
    CostModel,
    Outcome,
    cascade,
    coordinator_alone,
    fixed_level,
    tandem,
)
from tandem.classifier.questions import prompt_domain
from tandem.classifier.scoring import model_featurizer, score_questions
from tandem.classifier.thresholds import fit_cascade

COORDINATOR_ALONE = "coordinator alone"
EXECUTOR_ALONE = "executor alone (level 0)"
CASCADE = "cascade"
TANDEM = "tandem"
GIGA = 1e9


@dataclass(frozen=True)
class MethodResult:
    method: str
    questions: int
    correct: int
    coordinator_tokens: float  # mean generated tokens per question
    executor_tokens: float  # mean generated tokens of the executor's answers
    scoring_passes: float
    gflops_generated: float  # mean per question
    gflops_prompt: float
    money_per_1k: float  # USD per 1,000 questions
    flops_share: float | None = None  # of the coordinator alone's generated FLOPs
    money_share: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return self.correct / self.questions if self.questions else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "accuracy": self.accuracy}


def summarise(
    method: str, outcomes: Sequence[Outcome], costs: CostModel, **details: Any
) -> MethodResult:
    n = len(outcomes)
    spend = [o.spend for o in outcomes]
    return MethodResult(
        method=method,
        questions=n,
        correct=sum(o.correct for o in outcomes),
        coordinator_tokens=sum(s.coordinator_generated for s in spend) / n,
        executor_tokens=sum(s.executor_generated for s in spend) / n,
        scoring_passes=sum(o.scoring_passes for o in outcomes) / n,
        gflops_generated=sum(costs.flops_generated(s) for s in spend) / n / GIGA,
        gflops_prompt=sum(costs.flops_prompt(s) for s in spend) / n / GIGA,
        money_per_1k=float(sum(costs.money(s) for s in spend)) / n * 1000,
        details=details,
    )


def with_shares(rows: list[MethodResult]) -> list[MethodResult]:
    reference = next((r for r in rows if r.method == COORDINATOR_ALONE), None)
    if reference is None:
        return rows
    return [
        replace(
            row,
            flops_share=row.gflops_generated / reference.gflops_generated
            if reference.gflops_generated
            else None,
            money_share=row.money_per_1k / reference.money_per_1k
            if reference.money_per_1k
            else None,
        )
        for row in rows
    ]


@dataclass(frozen=True)
class Evaluation:
    rows: list[MethodResult]
    results_dir: Path
    meta: dict[str, Any]

    def row(self, method: str) -> MethodResult:
        return next(r for r in self.rows if r.method.startswith(method))


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def markdown(evaluation: Evaluation) -> str:
    meta = evaluation.meta
    lines = [
        f"# Classifier {meta['model_version']} on {meta['collected']}",
        "",
        f"{meta['test_questions']} test questions; coordinator `{meta['coordinator']}`, "
        f"executor `{meta['executor']}`; prompts {meta['prompt_version']}; levels "
        f"{meta['levels']}; Tandem's stop rule {meta['stop_rule']} (thresholds "
        f"{meta['thresholds']}). Computed offline from the "
        "collected file (no engine calls). FLOPs = 2 · parameters · generated tokens (prompt "
        "FLOPs apart, counting only prompt tokens the engine's prefix cache did not serve); "
        "the cost share is of the coordinator alone's generated FLOPs and money.",
        "",
        "| method | accuracy | coordinator tokens | executor tokens | scoring passes "
        "| GFLOPs (generated) | GFLOPs (prompt) | $ per 1k questions | FLOPs vs coordinator "
        "| $ vs coordinator |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in evaluation.rows:
        lines.append(
            f"| {r.method} | {100 * r.accuracy:.1f}% | {r.coordinator_tokens:.1f} "
            f"| {r.executor_tokens:.1f} | {r.scoring_passes:.2f} | {r.gflops_generated:.2f} "
            f"| {r.gflops_prompt:.2f} | {r.money_per_1k:.4f} | {_percent(r.flops_share)} "
            f"| {_percent(r.money_share)} |"
        )
    tandem_row = evaluation.row(TANDEM)
    lines += [
        "",
        f"Tandem stopped the coordinator at levels {tandem_row.details['stopped_at']} and "
        f"answered at levels {tandem_row.details['answered_at']} (level: questions).",
    ]
    if _has(evaluation, CASCADE):
        threshold = evaluation.row(CASCADE).details["threshold"]
        lines.append(
            f"The cascade escalates when the executor's mean generated-token log-prob is "
            f"below {threshold:.4f} (fitted on {meta['validation_questions']} validation "
            f"questions: {meta['objective']})."
        )
    return "\n".join(lines) + "\n"


def _has(evaluation: Evaluation, method: str) -> bool:
    return any(r.method.startswith(method) for r in evaluation.rows)


def chart(evaluation: Evaluation, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5))
    fixed = [r for r in evaluation.rows if r.method.startswith(("executor alone", "fixed level"))]
    ax.plot(
        [r.gflops_generated for r in fixed],
        [100 * r.accuracy for r in fixed],
        "o-",
        color="tab:gray",
        label="fixed insight levels",
    )
    styles = {
        COORDINATOR_ALONE: ("s", "tab:red"),
        CASCADE: ("^", "tab:orange"),
        TANDEM: ("*", "tab:blue"),
    }
    for row in evaluation.rows:
        for prefix, (marker, colour) in styles.items():
            if row.method.startswith(prefix):
                ax.plot(
                    row.gflops_generated,
                    100 * row.accuracy,
                    marker,
                    color=colour,
                    markersize=14 if prefix == TANDEM else 9,
                    label=prefix,
                )
    for level, row in enumerate(fixed):
        ax.annotate(
            f"level {level}",
            (row.gflops_generated, 100 * row.accuracy),
            textcoords="offset points",
            xytext=(6, -10),
            fontsize=8,
        )
    ax.set_xlabel("GFLOPs per question (2 · parameters · generated tokens)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{evaluation.meta['model_version']} on {evaluation.meta['collected']}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def savings_baseline(
    questions: Sequence[CollectedQuestion], costs: CostModel, source: str
) -> dict[str, Any]:
    """The coordinator alone's mean money per question, per job domain (exact decimals)."""
    by_domain: dict[str, list[Decimal]] = defaultdict(list)
    for question in questions:
        domain = prompt_domain(question.domain).value
        by_domain[domain].append(costs.money(coordinator_alone(question).spend))
    return {
        "source": source,
        "domains": {
            domain: {"mean_cost": str(sum(spent) / len(spent)), "sample_size": len(spent)}
            for domain, spent in sorted(by_domain.items())
        },
    }


def _engines(header: CollectHeader) -> dict[str, str]:
    return {"coordinator": header.coordinator.model, "executor": header.executor.model}


def version_rule(metadata: ModelMetadata, levels: Sequence[int]) -> StopRule:
    """The stop rule the version declares, for a file collected at ``levels``: the scorer's
    own (:class:`shared.classifier.runtime.Served`)."""
    served = Served(metadata.thresholds, metadata.levels, metadata.stop_rule)
    if metadata.levels is not None and not calibrated_for(metadata.levels, levels):
        kind = (metadata.stop_rule or {}).get("kind", THRESHOLD)
        if kind != THRESHOLD:
            raise ValueError(
                f"{metadata.version} was calibrated on levels {list(metadata.levels)}; its "
                f"{kind} rule cannot replay a file collected at {list(levels)}"
            )
    return served.rule_for(levels)


def evaluate_model(model: Path, collected: Path, results_dir: Path) -> Evaluation:
    header, questions = read_collected(collected)
    test = of_split(questions, "test")
    if not test:
        raise ValueError(f"{collected} has no test questions")
    metadata = read_metadata(model)
    card = read_card(model)
    costs = CostModel.from_header(header)
    rows: list[MethodResult] = []
    if has_coordinator_alone(test):
        rows.append(summarise(COORDINATOR_ALONE, [coordinator_alone(q) for q in test], costs))
    rows.append(summarise(EXECUTOR_ALONE, [fixed_level(q, 0) for q in test], costs))
    for level, budget in enumerate(header.levels[1:], start=1):
        rows.append(
            summarise(
                f"fixed level {level} ({budget} insight tokens)",
                [fixed_level(q, level) for q in test],
                costs,
            )
        )

    validation = validation_questions(questions)
    settings = CalibrationSettings.from_dict((card.get("calibration") or {}).get("settings"))
    objective_text = ""
    if has_coordinator_alone(test) and has_coordinator_alone(validation):
        metric = costs.metric(settings.cost)
        objective = resolve_objective(validation, settings, metric)
        objective_text = objective.describe()
        fit = fit_cascade(validation, metric, objective)
        rows.append(
            summarise(
                CASCADE,
                [cascade(q, fit.threshold) for q in test],
                costs,
                threshold=fit.threshold,
                validation_accuracy=fit.accuracy,
                target_reached=fit.reached,
            )
        )

    scores = score_questions(model, test, header)
    rule = version_rule(metadata, header.levels)
    featurizer = model_featurizer(model, header)
    outcomes = [tandem(q, scores[i], rule, featurizer.vectors(q)) for i, q in enumerate(test)]
    rows.append(
        summarise(
            TANDEM,
            outcomes,
            costs,
            stopped_at=dict(sorted(Counter(o.stopped_at for o in outcomes).items())),
            answered_at=dict(sorted(Counter(o.level for o in outcomes).items())),
        )
    )
    rows = with_shares(rows)
    meta = {
        "model": str(model),
        "model_version": metadata.version,
        "thresholds": list(metadata.thresholds),
        "stop_rule": rule.kind,
        "schedule": None if metadata.levels is None else list(metadata.levels),
        "collected": collected.name,
        "collected_path": str(collected),
        "test_questions": len(test),
        "validation_questions": len(validation),
        "objective": objective_text,
        "prompt_version": header.prompt_version,
        "levels": list(header.levels),
        **_engines(header),
        "header": header.to_dict(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    evaluation = Evaluation(rows, results_dir, meta)
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "table.md").write_text(markdown(evaluation), encoding="utf-8")
    (results_dir / "results.json").write_text(
        json.dumps({"meta": meta, "rows": [r.to_dict() for r in rows]}, indent=2) + "\n",
        encoding="utf-8",
    )
    chart(evaluation, results_dir / "cost_vs_accuracy.png")
    if has_coordinator_alone(test):
        source = (
            f"coordinator alone ({header.coordinator.model}) on the {len(test)} test questions "
            f"of {collected.name}, {datetime.now(UTC).date().isoformat()}"
        )
        (results_dir / "savings_baseline.json").write_text(
            json.dumps(savings_baseline(test, costs, source), indent=2) + "\n", encoding="utf-8"
        )
    frontier = compute_frontier(
        test,
        validation,
        scores,
        score_questions(model, validation, header),
        rule,
        costs,
        train=train_questions(questions),
        fit_measure=settings.cost,
        featurizer=featurizer,
    )
    write_frontier(frontier, results_dir, f"{metadata.version} on {collected.name}")
    tandem_row = evaluation.row(TANDEM)
    update_card(
        model,
        evaluation={
            "collected": str(collected),
            "results": str(results_dir),
            "test_questions": len(test),
            "accuracy": {r.method: round(r.accuracy, 4) for r in rows},
            "tandem_flops_share": tandem_row.flops_share,
            "tandem_money_share": tandem_row.money_share,
        },
    )
    return evaluation
