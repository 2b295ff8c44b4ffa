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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.prompts.lab import executor_prompt  # noqa: E402
from tandem.classifier.collected import read_collected  # noqa: E402
from tandem.classifier.questions import grade_output  # noqa: E402
from tandem.datasets import Split, TaskRecord  # noqa: E402
from tandem.lab.inference import LabModel  # noqa: E402


def _record(question: dict[str, Any]) -> TaskRecord:
    return TaskRecord(
        id=question["id"],
        domain=question["domain"],
        split=Split(question["split"]),
        question=question["question"],
        reference=question["reference"],
        solution="",
        insights="",
        grader=question["grader"],
    )


def rescore(
    source: Path, out: Path, executor: Path, model_id: str, limit: int | None, batch: int
) -> dict[str, Any]:
    lines = source.read_text().splitlines()
    header = json.loads(lines[0])
    questions = [json.loads(line) for line in lines[1:]][:limit]
    lab = LabModel.load(executor)
    prompts = sorted(
        {
            executor_prompt(q["question"], q["insights"][: level["insight_chars"]])
            for q in questions
            for level in q["levels"]
        }
    )
    started = time.process_time()
    logprobs = dict(zip(prompts, lab.prompt_logprobs(prompts, batch), strict=True))
    generated = lab.generate(prompts, header["answer_tokens"], batch_size=batch, logprobs=True)
    answers = dict(zip(prompts, generated, strict=True))
    old_logprobs: list[float] = []
    agree = graded = 0
    for q in questions:
        record = _record(q)
        for level in q["levels"]:
            prompt = executor_prompt(q["question"], q["insights"][: level["insight_chars"]])
            new = logprobs[prompt]
            old_logprobs += [
                abs(a - b)
                for a, b in zip(level["logprobs"], new, strict=False)
                if a is not None and b is not None and math.isfinite(a)
            ]
            level["logprobs"] = new
            given = answers[prompt]
            extracted, right = grade_output(record, given.text)
            agree += int(right == level["answer"]["correct"])
            graded += 1
            level["answer"].update(
                text=given.text,
                answer=extracted,
                correct=right,
                generated_tokens=given.tokens,
                mean_logprob=given.mean_logprob,
                finish_reason="eos_token" if given.finished else "length",
            )
    for role in ("executor", "scorer"):
        header[role].update(model=model_id, served_model=model_id, url=f"in-process:{executor}")
        header[role]["parameters"] = lab.parameters
    header["source"] = f"{header.get('source')} (executor replayed in process)"
    out.write_text("".join(json.dumps(x) + "\n" for x in [header, *questions]))
    read_collected(out)  # the result must be a file the classifier commands accept
    return {
        "questions": len(questions),
        "prompts": len(prompts),
        "cpu_s": round(time.process_time() - started, 1),
        "max_abs_logprob_change": round(max(old_logprobs, default=0.0), 5),
        "grades_unchanged": round(agree / max(graded, 1), 4),
        "accuracy_by_level": [
            round(sum(q["levels"][k]["answer"]["correct"] for q in questions) / len(questions), 4)
            for k in range(len(questions[0]["levels"]))
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
