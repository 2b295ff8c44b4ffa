"""Replay a collected file's executor with another lab executor, in process.

``tandem classifier collect`` records, per question and level, the coordinator's insights, the
scorer's prompt log-probs and the executor's graded answer, all through served engines. This
keeps the coordinator's part (its insights, the coordinator alone) and recomputes the executor's
part with the model in ``--executor``: the prompt log-probs of each level's executor prompt (one
forward pass, as the engine server's ``decoder_input_details``) and its greedy answer, graded as a
job's answer is. The header names the new executor; token counts are the new ones, cached-token
counts are kept (the prompts are the same). The result is read by ``tandem classifier
train|calibrate|evaluate`` and by ``benchmarks/transfer_study.py`` like any collected file.

For studies of an executor before it is served: replaying a file with the executor that made it
reproduces its log-probs to float noise and its grades (the summary prints how closely).

    python benchmarks/rescore_executor.py IN OUT --executor models/lab/v3/executor \
        --model-id tandem-lab-v3-executor [--limit N]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.prompts.lab import executor_prompt  # noqa: E402
from tandem.classifier.collected import (  # noqa: E402
    Answer,
    CollectedQuestion,
    EngineSpec,
    LevelResult,
    read_collected,
)
from tandem.classifier.questions import grade_output  # noqa: E402
from tandem.datasets import Split, TaskRecord  # noqa: E402
from tandem.lab.inference import Generation, LabModel  # noqa: E402


def _record(question: CollectedQuestion) -> TaskRecord:
    """What grading needs of a collected question."""
    return TaskRecord(
        id=question.id,
        domain=question.domain,
        split=Split(question.split),
        question=question.question,
        reference=question.reference,
        solution="",
        insights="",
        grader=question.grader,
    )


def _answer(question: CollectedQuestion, old: Answer, given: Generation) -> Answer:
    extracted, right = grade_output(_record(question), given.text)
    return replace(
        old,
        text=given.text,
        answer=extracted,
        correct=right,
        call=replace(old.call, generated_tokens=given.tokens),
        mean_logprob=given.mean_logprob,
        finish_reason="eos_token" if given.finished else "length",
    )


def rescore(
    source: Path, out: Path, executor: Path, model_id: str, limit: int | None, batch: int
) -> dict[str, Any]:
    header, questions = read_collected(source)
    questions = questions[:limit]
    lab = LabModel.load(executor)
    prompt_of = {
        (q.id, r.level): executor_prompt(q.question, q.insights_at(r.level))
        for q in questions
        for r in q.levels
    }
    prompts = sorted(set(prompt_of.values()))
    started = time.process_time()
    logprobs = dict(zip(prompts, lab.prompt_logprobs(prompts, batch), strict=True))
    generated = lab.generate(prompts, header.answer_tokens, batch_size=batch, logprobs=True)
    answers = dict(zip(prompts, generated, strict=True))
    changes: list[float] = []  # |new - collected| per prompt token
    replayed: list[CollectedQuestion] = []
    for q in questions:
        levels: list[LevelResult] = []
        for r in q.levels:
            prompt = prompt_of[(q.id, r.level)]
            new = logprobs[prompt]
            changes += [
                abs(a - b)
                for a, b in zip(r.logprobs, new, strict=False)
                if a is not None and b is not None and math.isfinite(a)
            ]
            levels.append(
                replace(r, logprobs=tuple(new), answer=_answer(q, r.answer, answers[prompt]))
            )
        replayed.append(replace(q, levels=tuple(levels)))

    def served_here(spec: EngineSpec) -> EngineSpec:
        where = f"in-process:{executor}"
        return replace(
            spec, model=model_id, served_model=model_id, url=where, parameters=lab.parameters
        )

    header = replace(
        header,
        executor=served_here(header.executor),
        scorer=served_here(header.scorer),
        source=f"{header.source} (executor replayed in process)",
    )
    out.write_text(header.to_json_line() + "".join(q.to_json_line() for q in replayed))
    pairs = [
        (r.answer.correct, n.answer.correct)
        for q, m in zip(questions, replayed, strict=True)
        for r, n in zip(q.levels, m.levels, strict=True)
    ]
    return {
        "questions": len(replayed),
        "prompts": len(prompts),
        "cpu_s": round(time.process_time() - started, 1),
        "max_abs_logprob_change": round(max(changes, default=0.0), 5),
        "grades_unchanged": round(sum(a == b for a, b in pairs) / max(len(pairs), 1), 4),
        "accuracy_by_level": [
            round(sum(q.levels[k].answer.correct for q in replayed) / len(replayed), 4)
            for k in range(len(replayed[0].levels))
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--executor", type=Path, required=True)
    parser.add_argument("--model-id", required=True)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    summary = rescore(args.source, args.out, args.executor, args.model_id, args.limit, args.batch)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
