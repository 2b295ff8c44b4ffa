"""In-process measurement of the lab pair on the test split (no server needed).

For every test question the coordinator writes its insights once (greedy, until ``</I>``); the
executor is then run on those *generated* insights cut at each token budget. The generator's own
insights are used in one row only, marked as a diagnostic upper bound, never as a setting.
Cost is generated tokens and FLOPs = 2 · parameters · tokens of each model, generated alone
(the paper's measure) and total (prompt + generated; the coordinator reads the question once per
setting, as it would continuing its own insights with a prefix cache). Where the records say how
many facts a question leaves out (``meta["missing_facts"]``, the v2 domains), accuracy is also
broken down by that insight need.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from shared.prompts.lab import INSIGHT_END, executor_prompt, insight_prompt
from tandem.datasets import TaskRecord, grade
from tandem.lab.corpus import insight_ids, truncate_ids
from tandem.lab.inference import Generation, LabModel

MAX_INSIGHT_TOKENS = 96
MAX_SOLUTION_TOKENS = 160


@dataclass(frozen=True)
class Row:
    setting: str
    correct: int
    questions: int
    coordinator_tokens: float  # mean generated tokens per question
    executor_tokens: float
    mflops: float  # mean generated-token FLOPs per question, in millions
    total_mflops: float = 0.0  # prompt and generated FLOPs
    by_need: dict[str, float] | None = None  # accuracy by left-out facts
    diagnostic: bool = False

    @property
    def accuracy(self) -> float:
        return self.correct / self.questions if self.questions else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "accuracy": round(self.accuracy, 4)}


def _row(
    setting: str,
    records: Sequence[TaskRecord],
    outputs: Sequence[str],
    coordinator_tokens: Sequence[int],
    executor_tokens: Sequence[int],
    coordinator: LabModel,
    executor: LabModel,
    prompt_tokens: tuple[Sequence[int], Sequence[int]],
    diagnostic: bool = False,
) -> Row:
    """One setting's row; ``prompt_tokens`` are each question's prompt tokens read by the
    coordinator and by the executor."""
    n = len(records)
    pairs = zip(records, outputs, strict=True)
    right = [grade(record.grader, output, record.reference) for record, output in pairs]
    c_mean = sum(coordinator_tokens) / n
    e_mean = sum(executor_tokens) / n
    c_prompt = sum(prompt_tokens[0]) / n
    e_prompt = sum(prompt_tokens[1]) / n
    flops = 2 * coordinator.parameters * c_mean + 2 * executor.parameters * e_mean
    prompt_flops = 2 * coordinator.parameters * c_prompt + 2 * executor.parameters * e_prompt
    return Row(
        setting,
        sum(right),
        n,
        round(c_mean, 2),
        round(e_mean, 2),
        round(flops / 1e6, 3),
        round((flops + prompt_flops) / 1e6, 3),
        _by_need(records, right),
        diagnostic,
    )


def _by_need(records: Sequence[TaskRecord], right: Sequence[bool]) -> dict[str, float] | None:
    if not all("missing_facts" in record.meta for record in records):
        return None
    groups: dict[int, list[bool]] = {}
    for record, ok in zip(records, right, strict=True):
        groups.setdefault(int(record.meta["missing_facts"]), []).append(ok)
    return {str(k): round(sum(v) / len(v), 4) for k, v in sorted(groups.items())}


def _lengths(model: LabModel, prompts: Sequence[str]) -> list[int]:
    return [len(model.tokenizer(prompt)["input_ids"]) for prompt in prompts]


def budget_tokens(insights: Generation, budget: int | None) -> int:
    """Coordinator tokens spent to get insights cut at ``budget`` (it may stop before)."""
    if budget is None or insights.tokens <= budget:
        return insights.tokens
    return budget


def evaluate_domain(
    coordinator: LabModel,
    executor: LabModel,
    records: Sequence[TaskRecord],
    budgets: Sequence[int],
    batch_size: int = 32,
) -> dict[str, Any]:
    questions = [r.question for r in records]
    insights = coordinator.generate(
        [insight_prompt(q) for q in questions],
        MAX_INSIGHT_TOKENS,
        stop_tokens=[INSIGHT_END],
        batch_size=batch_size,
    )
    alone_prompts = [executor_prompt(q) for q in questions]
    alone = coordinator.generate(alone_prompts, MAX_SOLUTION_TOKENS, batch_size=batch_size)
    none = [0] * len(records)
    insight_reads = _lengths(coordinator, [insight_prompt(q) for q in questions])
    rows = [
        _row(
            "coordinator alone",
            records,
            [g.text for g in alone],
            [g.tokens for g in alone],
            none,
            coordinator,
            executor,
            (_lengths(coordinator, alone_prompts), none),
        )
    ]
    planned_prompts = [executor_prompt(q, i.text) for q, i in zip(questions, insights, strict=True)]
    planned = coordinator.generate(planned_prompts, MAX_SOLUTION_TOKENS, batch_size=batch_size)
    rows.append(
        _row(
            "coordinator insights + coordinator solution",
            records,
            [g.text for g in planned],
            [i.tokens + g.tokens for i, g in zip(insights, planned, strict=True)],
            none,
            coordinator,
            executor,
            # It continues its own insights: the question is read once.
            (_lengths(coordinator, planned_prompts), none),
        )
    )
    tokenizer = coordinator.tokenizer
    for budget in [0, *budgets, None]:
        prefixes = [truncate_ids(tokenizer, i.ids, budget) for i in insights]
        prompts = [executor_prompt(q, p) for q, p in zip(questions, prefixes, strict=True)]
        answers = executor.generate(prompts, MAX_SOLUTION_TOKENS, batch_size=batch_size)
        name = (
            "executor alone"
            if budget == 0
            else "executor + all coordinator insights"
            if budget is None
            else f"executor + coordinator insights <= {budget} tokens"
        )
        rows.append(
            _row(
                name,
                records,
                [g.text for g in answers],
                [budget_tokens(i, budget) if budget != 0 else 0 for i in insights],
                [g.tokens for g in answers],
                coordinator,
                executor,
                (none if budget == 0 else insight_reads, _lengths(executor, prompts)),
            )
        )
    oracle_prompts = [executor_prompt(r.question, r.insights) for r in records]
    oracle = executor.generate(oracle_prompts, MAX_SOLUTION_TOKENS, batch_size=batch_size)
    rows.append(
        _row(
            "diagnostic: executor + generator insights",
            records,
            [g.text for g in oracle],
            [0] * len(records),
            [g.tokens for g in oracle],
            coordinator,
            executor,
            (none, _lengths(executor, oracle_prompts)),
            diagnostic=True,
        )
    )
    insight_lengths = [len(insight_ids(tokenizer, r.insights)) for r in records]
    return {
        "questions": len(records),
        "rows": [row.to_dict() for row in rows],
        "coordinator_insight_tokens_mean": round(sum(i.tokens for i in insights) / len(records), 2),
        "coordinator_insights_finished": sum(i.finished for i in insights),
        "generator_insight_tokens_mean": round(sum(insight_lengths) / len(records), 2),
        "examples": [
            {
                "question": r.question,
                "reference": r.reference,
                "insights": i.text,
                "coordinator_alone": a.text,
            }
            for r, i, a in list(zip(records, insights, alone, strict=True))[:3]
        ],
    }


def markdown(results: dict[str, Any]) -> str:
    """The measurement as Markdown tables, one per domain."""
    lines = [
        # Both pairs share one prompt layout: the title names the pair, then the layout.
        f"# Lab pair {results.get('pair', 'v1')} on the test split "
        f"(prompts {results['prompt_version']})",
        "",
        f"Coordinator {results['parameters']['coordinator']:,} parameters, executor "
        f"{results['parameters']['executor']:,}. Greedy decoding; FLOPs = 2 · parameters · "
        "generated tokens (MFLOPs), and prompt + generated tokens (total). Executor insights "
        "are the coordinator's own generated insights, cut at a token budget.",
        "",
    ]
    for domain, domain_results in results["domains"].items():
        rows = domain_results["rows"]
        base = rows[0]["mflops"] or 1.0
        total_base = rows[0].get("total_mflops") or 1.0
        lines += [
            f"## {domain} ({domain_results['questions']} test questions)",
            "",
            "| setting | accuracy | coordinator tokens | executor tokens | MFLOPs | "
            "cost vs coordinator alone | total MFLOPs | total vs coordinator alone |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in rows:
            total = row.get("total_mflops", 0.0)
            lines.append(
                f"| {row['setting']} | {row['accuracy']:.1%} ({row['correct']}/{row['questions']})"
                f" | {row['coordinator_tokens']:.1f} | {row['executor_tokens']:.1f} | "
                f"{row['mflops']:.1f} | {row['mflops'] / base:.0%} | {total:.1f} | "
                f"{total / total_base:.0%} |"
            )
        needs = [row for row in rows if row.get("by_need")]
        if needs:
            keys = list(needs[0]["by_need"])
            lines += [
                "",
                "Accuracy by the number of facts the question leaves out:",
                "",
                "| setting | " + " | ".join(f"{k} left out" for k in keys) + " |",
                "|---|" + "---:|" * len(keys),
            ]
            for row in needs:
                cells = " | ".join(f"{row['by_need'][k]:.1%}" for k in keys)
                lines.append(f"| {row['setting']} | {cells} |")
        lines += [
            "",
            f"Coordinator insights: {domain_results['coordinator_insight_tokens_mean']}"
            f" tokens on average ({domain_results['coordinator_insights_finished']} of "
            f"{domain_results['questions']} ended with `</I>`); the generator's: "
            f"{domain_results['generator_insight_tokens_mean']}.",
            "",
        ]
    return "\n".join(lines)
