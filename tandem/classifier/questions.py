"""Where collected questions come from, which prompt they get, and how an answer is graded.

A question source is a generated domain of :mod:`tandem.datasets` (``arithmetic``, ``math``,
``lists``), ``humaneval`` (:mod:`tandem.classifier.code_tasks`), or a user's JSONL file, one
object per line::

    {"id": "q-001", "domain": "math", "question": "What is 2/3 of 27?", "reference": "18",
     "grader": "math", "split": "test"}

- ``id``: unique within the file (collect resumes by it);
- ``domain``: picks the prompt template: ``math`` (and ``arithmetic``, ``catalog``, ``shop``,
  ``ages``), ``code``,
  anything else the ``general`` template;
- ``reference``: the exact answer as text; ``grader``: ``math`` (numbers compared after
  normalising: ``1,200`` = ``1200.0``, ``3/4`` = ``0.75`` = ``\\frac{3}{4}``), ``list``, or
  ``code`` (the reference is JSON ``{"prompt", "test", "entry_point"}``; the answer's code runs
  against the test in a sandboxed subprocess);
- ``split`` (optional): ``train``, ``validation`` or ``test``; without it the split is decided
  by a hash of the question, as for the generated domains, so no question is in two splits.

Grading uses the serving path's answer extraction (:func:`shared.answers.extract_answer`), so
a label says whether the answer a job would return is right.
"""

from __future__ import annotations

import json
from pathlib import Path

from shared.answers import extract_answer
from shared.db.models import Domain
from tandem.classifier.code_tasks import (
    HUMANEVAL,
    CodeReferenceError,
    grade_code,
    humaneval_records,
    parse_reference,
)
from tandem.datasets import ANSWER_GRADERS, GENERATORS, Split, TaskRecord, generate, split_of

REQUIRED_FIELDS = ("id", "domain", "question", "reference", "grader")
CODE_GRADER = "code"
GRADER_NAMES = (*sorted(ANSWER_GRADERS), CODE_GRADER)

# Dataset domains whose name is not a prompt template's.
_PROMPT_DOMAINS: dict[str, Domain] = {
    "arithmetic": Domain.MATH,
    "catalog": Domain.MATH,
    "shop": Domain.MATH,
    "ages": Domain.MATH,
}


class QuestionFileError(ValueError):
    """A user's question file that cannot be read as documented above."""


def prompt_domain(domain: str) -> Domain:
    """The template a dataset domain is prompted with (unknown domains: ``general``)."""
    if domain in _PROMPT_DOMAINS:
        return _PROMPT_DOMAINS[domain]
    try:
        return Domain(domain)
    except ValueError:
        return Domain.GENERAL


def is_registry_domain(source: str) -> bool:
    return source in GENERATORS


def read_question_file(path: Path) -> list[TaskRecord]:
    """Every record of a user's JSONL file, checked line by line."""
    records: list[TaskRecord] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as error:
            raise QuestionFileError(f"{where}: not JSON ({error.msg})") from error
        if not isinstance(data, dict):
            raise QuestionFileError(f"{where}: expected a JSON object")
        missing = [name for name in REQUIRED_FIELDS if not str(data.get(name, "")).strip()]
        if missing:
            raise QuestionFileError(f"{where}: missing {', '.join(missing)}")
        if data["grader"] not in GRADER_NAMES:
            raise QuestionFileError(
                f"{where}: unknown grader {data['grader']!r}; known: {list(GRADER_NAMES)}"
            )
        if data["grader"] == CODE_GRADER:
            try:
                parse_reference(str(data["reference"]))
            except CodeReferenceError as error:
                raise QuestionFileError(f"{where}: {error}") from error
        if str(data["id"]) in seen:
            raise QuestionFileError(f"{where}: duplicate id {data['id']!r}")
        seen.add(str(data["id"]))
        split = data.get("split") or split_of(str(data["question"]))
        try:
            records.append(TaskRecord.from_dict({**data, "split": split}))
        except ValueError as error:
            raise QuestionFileError(f"{where}: {error}") from error
    return records


def load_questions(
    source: str,
    splits: list[Split],
    count: int | None,
    *,
    seed: int = 0,
    difficulty: str = "lab",
) -> list[TaskRecord]:
    """Questions of ``splits``: ``count`` generated per split, or a file's (first ``count``)."""
    if source == HUMANEVAL:
        return humaneval_records(splits, count)
    if is_registry_domain(source):
        return [
            record
            for split in splits
            for record in generate(source, split, count or 100, seed=seed, difficulty=difficulty)
        ]
    path = Path(source)
    if not path.is_file():
        raise QuestionFileError(
            f"{source!r} is neither a dataset ({', '.join([*sorted(GENERATORS), HUMANEVAL])}) "
            "nor a file"
        )
    records = read_question_file(path)
    chosen: list[TaskRecord] = []
    for split in splits:
        of_split = [r for r in records if r.split is split]
        chosen += of_split if count is None else of_split[:count]
    return chosen


def grade_output(record: TaskRecord, text: str) -> tuple[str | None, bool]:
    """The answer a job would extract from ``text``, and whether it is right (code: whether it
    passes the tests, run in a subprocess: call it off the event loop)."""
    answer = extract_answer(text, prompt_domain(record.domain))
    if record.grader == CODE_GRADER:
        return answer, grade_code(answer, record.reference)
    right = answer is not None and ANSWER_GRADERS[record.grader](answer, record.reference)
    return answer, right
