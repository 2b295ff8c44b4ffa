"""The arithmetic domain: exact answers (checked by the simulator engine's own evaluator),
disjoint splits, determinism; and grading of already extracted answers."""

from __future__ import annotations

import pytest

from services.engine.backends.sim import answer_of
from tandem.datasets import Split, generate, grade, grade_answer, split_of
from tandem.datasets.arithmetic import DIFFICULTIES


@pytest.mark.parametrize("difficulty", sorted(DIFFICULTIES))
def test_answers_are_what_the_simulator_computes(difficulty: str) -> None:
    records = generate("arithmetic", Split.TRAIN, 60, difficulty=difficulty)
    bounds = DIFFICULTIES[difficulty]
    for record in records:
        assert answer_of(f"Question: {record.question}\n\n") == record.reference
        assert grade(record.grader, record.solution, record.reference)
        operands = record.meta["operands"]
        assert bounds.min_operands <= operands <= bounds.max_operands


def test_splits_are_disjoint_and_deterministic() -> None:
    by_split = {s: generate("arithmetic", s, 40, seed=3) for s in Split}
    for split, records in by_split.items():
        assert all(split_of(r.question) is split for r in records)
        assert len({r.question for r in records}) == 40
    assert generate("arithmetic", Split.TEST, 40, seed=3) == by_split[Split.TEST]
    assert generate("arithmetic", Split.TEST, 40, seed=4) != by_split[Split.TEST]


@pytest.mark.parametrize(
    ("grader", "answer", "reference", "right"),
    [
        ("math", "\\frac{3}{4}", "0.75", True),
        ("math", "1,200", "1200", True),
        ("math", "-5", "5", False),
        ("math", None, "5", False),
        ("list", "[3, 1]", "[3,1]", True),
        ("list", "[1, 3]", "[3, 1]", False),
    ],
)
def test_grade_answer(grader: str, answer: str | None, reference: str, right: bool) -> None:
    assert grade_answer(grader, answer, reference) is right


def test_grade_answer_names_unknown_graders() -> None:
    with pytest.raises(KeyError, match="unknown grader 'python'"):
        grade_answer("python", "1", "1")
