"""Question sources (generated domains, a user's JSONL), prompt templates per domain, and
grading through the serving path's answer extraction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.db.models import Domain
from tandem.classifier.questions import (
    QuestionFileError,
    grade_output,
    load_questions,
    prompt_domain,
    read_question_file,
)
from tandem.datasets import Split, TaskRecord, split_of


def write(path: Path, *records: dict[str, object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def record(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "q1",
        "domain": "math",
        "question": "What is 2/3 of 27?",
        "reference": "18",
        "grader": "math",
    }
    return {**base, **overrides}


def test_user_file_with_and_without_splits(tmp_path: Path) -> None:
    path = write(
        tmp_path / "mine.jsonl",
        record(split="test"),
        record(id="q2", question="What is 1 + 1?", reference="2"),
    )
    first, second = read_question_file(path)
    assert first.split is Split.TEST and first.grader == "math"
    assert second.split is split_of("What is 1 + 1?")  # decided by the question's hash
    assert [r.id for r in load_questions(str(path), [Split.TEST], None)] == ["q1"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps(record(reference="")), "missing reference"),
        (json.dumps(record(grader="python")), "unknown grader 'python'"),
        (json.dumps(record(split="holdout")), "holdout"),
    ],
)
def test_bad_user_files_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(record(id="ok")) + "\n" + line + "\n")
    with pytest.raises(QuestionFileError, match=message) as caught:
        read_question_file(path)
    assert f"{path}:2" in str(caught.value)


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "dup.jsonl", record(), record())
    with pytest.raises(QuestionFileError, match="duplicate id 'q1'"):
        read_question_file(path)


def test_generated_domains_and_unknown_sources() -> None:
    records = load_questions("arithmetic", [Split.TRAIN, Split.TEST], 3)
    assert [r.split for r in records] == [Split.TRAIN] * 3 + [Split.TEST] * 3
    with pytest.raises(QuestionFileError, match="neither a dataset"):
        load_questions("no-such-thing", [Split.TEST], 3)


def test_prompt_domains() -> None:
    assert prompt_domain("arithmetic") is Domain.MATH
    assert prompt_domain("math") is Domain.MATH
    assert prompt_domain("code") is Domain.CODE
    assert prompt_domain("lists") is Domain.GENERAL
    # The lab v2 domains' answers are numbers: a job extracts them as math answers.
    assert prompt_domain("shop") is Domain.MATH and prompt_domain("ages") is Domain.MATH


def test_a_lab_v2_answer_is_graded_as_a_number() -> None:
    text = " 2 ro-ra at 9: 9, 18. 2 ma-pu at 2: 2, 4. 18 + 4: 8 + 4 = 12, so 22. Answer: 22"
    assert grade_output(task("shop", "22", "math"), text) == ("22", True)


def task(domain: str, reference: str, grader: str) -> TaskRecord:
    return TaskRecord("x", domain, Split.TEST, "q", reference, "", "", grader)


@pytest.mark.parametrize(
    ("domain", "reference", "grader", "text", "expected"),
    [
        ("math", "7/2", "math", "So it is \\boxed{\\frac{7}{2}}.", ("\\frac{7}{2}", True)),
        ("math", "3.5", "math", "The answer is \\boxed{7/2}.", ("7/2", True)),
        ("arithmetic", "1200", "math", "which makes 1,200 in total", ("1200", True)),
        ("math", "12", "math", "The answer is \\boxed{13}.", ("13", False)),
        ("math", "12", "math", "no idea", (None, False)),
        ("lists", "[1, 2]", "list", "The answer is: [1,2].", ("[1,2]", True)),
    ],
)
def test_grading_uses_the_serving_extraction(
    domain: str, reference: str, grader: str, text: str, expected: tuple[str | None, bool]
) -> None:
    assert grade_output(task(domain, reference, grader), text) == expected
