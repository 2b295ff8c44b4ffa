"""Collect labelled feature rows from the configured engines and train the first classifier.

It runs the serving code path's pieces, level by level, per question: the coordinator extends
its insights with :func:`shared.prompts.insight_prompt`, the scorer's prompt log-probs over
:func:`shared.prompts.executor_prompt` become :func:`shared.features.features`, the executor
answers the same prompt and :func:`shared.answers.extract_answer` is graded against the exact
answer. The label of a (question, level) row is "the executor was right at that level".

Run against the simulator engine (``sim-coordinator`` / ``sim-executor``) this produces the
classifier shipped in ``models/classifier/``; the full collect/train/calibrate/evaluate CLI
builds on the same functions::

    python -m tandem.classifier.bootstrap --coordinator-url http://127.0.0.1:8081 \\
        --executor-url http://127.0.0.1:8082 --questions 400 --out models/classifier/sim-mlp-v1.onnx
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from shared.answers import extract_answer
from shared.db.models import Domain, Role
from shared.engines import make_client
from shared.engines.base import EngineClient
from shared.engines.config import engine_config
from shared.features import features
from shared.prompts import END_OF_INSIGHTS, family_of, insight_prompt
from shared.prompts import executor_prompt as make_executor_prompt
from tandem.classifier.train import train

DEFAULT_LEVELS = (0, 100, 500, 1000)


def arithmetic_questions(count: int, seed: int) -> list[tuple[str, str]]:
    """Seeded two-to-four-operand arithmetic questions with exact answers."""
    rng = random.Random(seed)
    out: list[tuple[str, str]] = []
    for _ in range(count):
        terms = [str(rng.randint(2, 60)) for _ in range(rng.randint(2, 4))]
        ops = [rng.choice("+-*") for _ in terms[1:]]
        expression = terms[0] + "".join(f" {o} {t}" for o, t in zip(ops, terms[1:], strict=True))
        value = Fraction(eval(expression))  # noqa: S307 - digits and + - * only, built above
        out.append((f"What is {expression}?", str(value)))
    return out


def correct(output: str, reference: str) -> bool:
    answer = extract_answer(output, Domain.MATH)
    try:
        return answer is not None and Fraction(answer) == Fraction(reference)
    except (ValueError, ZeroDivisionError):
        return False


async def collect_question(
    coordinator: EngineClient,
    executor: EngineClient,
    question: str,
    reference: str,
    levels: tuple[int, ...],
    answer_tokens: int,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    insights, insight_tokens, finished = "", 0, False
    coordinator_family = family_of(coordinator.profile.name)
    executor_family = family_of(executor.profile.name)
    for level, budget in enumerate(levels):
        if level > 0 and not finished:
            prompt = insight_prompt(question, insights, Domain.MATH, coordinator_family)
            generation = await coordinator.generate(
                prompt, max_new_tokens=budget - levels[level - 1], stop=[END_OF_INSIGHTS]
            )
            insights += generation.text.split(END_OF_INSIGHTS, 1)[0]
            insight_tokens += generation.generated_tokens
            finished = generation.finish_reason in ("eos_token", "stop_sequence")
        prompt = make_executor_prompt(question, insights, Domain.MATH, executor_family)
        scored = await executor.prompt_logprobs(prompt)
        answer = await executor.generate(prompt, max_new_tokens=answer_tokens)
        rows.append(
            {
                "question": question,
                "level": level,
                "insight_tokens": insight_tokens,
                "features": features(
                    [t.logprob for t in scored.prompt_logprobs], level, insight_tokens
                ),
                "label": int(correct(answer.text, reference)),
                "executor_tokens": answer.generated_tokens,
            }
        )
    return rows


async def collect(
    questions: list[tuple[str, str]],
    coordinator_url: str,
    executor_url: str,
    levels: tuple[int, ...] = DEFAULT_LEVELS,
    answer_tokens: int = 256,
    concurrency: int = 8,
) -> list[dict[str, Any]]:
    coordinator = make_client(replace(engine_config(Role.COORDINATOR), url=coordinator_url))
    executor = make_client(replace(engine_config(Role.EXECUTOR), url=executor_url))
    gate = asyncio.Semaphore(concurrency)

    async def one(question: str, reference: str) -> list[dict[str, Any]]:
        async with gate:
            return await collect_question(
                coordinator, executor, question, reference, levels, answer_tokens
            )

    try:
        results = await asyncio.gather(*(one(q, r) for q, r in questions))
    finally:
        await coordinator.aclose()
        await executor.aclose()
    return [row for rows in results for row in rows]


def fit_thresholds(
    scores: list[list[float]], labels: list[list[int]], target: float
) -> list[float]:
    """Per level, the lowest threshold whose stopped questions are right at least ``target``
    of the time (1.01, never stopping, where none reaches it); the last level always stops."""
    levels = len(scores[0])
    thresholds: list[float] = []
    for level in range(levels):
        pairs = sorted(
            ((s[level], y[level]) for s, y in zip(scores, labels, strict=True)), reverse=True
        )
        best, right = 1.01, 0
        for count, (score, label) in enumerate(pairs, start=1):
            right += label
            if right / count >= target:
                best = score
        thresholds.append(round(min(best, 1.01), 4))
    return thresholds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--coordinator-url", required=True)
    parser.add_argument("--executor-url", required=True)
    parser.add_argument("--questions", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--version", default="sim-mlp-v1")
    parser.add_argument("--out", type=Path, default=Path("models/classifier/sim-mlp-v1.onnx"))
    args = parser.parse_args()

    questions = arithmetic_questions(args.questions, args.seed)
    rows = asyncio.run(collect(questions, args.coordinator_url, args.executor_url))
    per_question = len(DEFAULT_LEVELS)
    for index, row in enumerate(rows):
        row["split"] = "validation" if (index // per_question) % 5 == 0 else "train"
    data = args.out.with_suffix(".train.jsonl")
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    provisional = train(rows, args.out, version=args.version, thresholds=[0.5] * per_question)

    import numpy as np
    import onnxruntime

    session = onnxruntime.InferenceSession(str(args.out), providers=["CPUExecutionProvider"])
    validation = [r for r in rows if r["split"] == "validation"]
    matrix = np.array([r["features"] for r in validation], dtype=np.float32)
    flat = session.run(None, {"features": matrix})[0].reshape(-1).tolist()
    scores = [flat[i : i + per_question] for i in range(0, len(flat), per_question)]
    labels = [
        [r["label"] for r in validation[i : i + per_question]]
        for i in range(0, len(validation), per_question)
    ]
    target = sum(q[-1] for q in labels) / len(labels)  # accuracy with every insight level
    thresholds = fit_thresholds(scores, labels, target)
    result = train(rows, args.out, version=args.version, thresholds=thresholds)
    assert result.data_hash == provisional.data_hash
    print(
        json.dumps(
            {
                "version": result.version,
                "rows": len(rows),
                "validation_accuracy": result.validation_accuracy,
                "validation_brier": result.validation_brier,
                "onnx_max_abs_diff": result.onnx_max_abs_diff,
                "epochs": result.epochs,
                "target_accuracy": target,
                "thresholds": thresholds,
                "data": str(data),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
