"""Generators: exact answers (checked by independent interpreters), disjoint splits, determinism."""

from __future__ import annotations

import re

import pytest

from tandem.datasets import Split, generate, grade, read_jsonl, split_of, write_jsonl
from tandem.datasets.math_word import DIFFICULTIES as MATH_DIFFICULTIES
from tandem.datasets.records import TaskRecord, canonical_question

DOMAINS = ("math", "lists")


def solve_math(question: str) -> int:
    """An interpreter of the word problems, written from the question text alone."""
    sentences = re.split(r"(?<=[.?])\s+", question)
    match = re.match(r"\w+ has (\d+) ", sentences[0])
    assert match is not None
    x = int(match.group(1))
    for sentence in sentences[1:-1]:
        numbers = [int(n) for n in re.findall(r"\d+", sentence)]
        if re.search(r"\b(buys|finds|wins|gets) \d+ more\b", sentence):
            x += numbers[0]
        elif re.search(r"\b(gives|loses|sells|uses) \d+\b", sentence):
            x -= numbers[0]
        elif "with" in sentence and "each" in sentence:
            x += numbers[0] * numbers[1]
        elif "doubles" in sentence:
            x *= 2
        elif "triples" in sentence:
            x *= 3
        elif "equally into" in sentence:
            assert x % numbers[0] == 0
            x //= numbers[0]
        else:
            raise AssertionError(f"unknown event: {sentence}")
    return x


def run_list_program(question: str) -> str:
    """An interpreter of the list programs, written from the question text alone."""
    match = re.match(r"Start with \[([\d, ]*)\]\. (.*) What is the result\?", question)
    assert match is not None
    start, rest = match.groups()
    items = [int(v) for v in start.split(",")]
    value: int | None = None
    for sentence in re.findall(r"[^.]+\.", rest):
        s = sentence.strip()
        n = [int(v) for v in re.findall(r"\d+", s)]
        if s == "Reverse it.":
            items = items[::-1]
        elif s == "Sort it.":
            items = sorted(items)
        elif s.startswith("Keep the first"):
            items = items[: n[0]]
        elif s.startswith("Drop the first"):
            items = items[n[0] :]
        elif s.startswith("Add"):
            items = [v + n[0] for v in items]
        elif s == "Keep only the even items.":
            items = [v for v in items if v % 2 == 0]
        elif s == "Keep only the odd items.":
            items = [v for v in items if v % 2 == 1]
        elif s == "Then take the sum.":
            value = sum(items)
        elif s == "Then take the largest item.":
            value = max(items)
        elif s == "Then take the smallest item.":
            value = min(items)
        elif s == "Then count the items.":
            value = len(items)
        else:
            raise AssertionError(f"unknown operation: {s}")
    return str(value) if value is not None else "[" + ", ".join(map(str, items)) + "]"


@pytest.fixture(scope="module")
def samples() -> dict[tuple[str, Split], list[TaskRecord]]:
    sizes = {Split.TRAIN: 1500, Split.VALIDATION: 200, Split.TEST: 200}
    return {(d, s): generate(d, s, n, seed=7) for d in DOMAINS for s, n in sizes.items()}


def test_math_answers_are_exact(samples):
    for split in Split:
        for record in samples[("math", split)]:
            assert str(solve_math(record.question)) == record.reference, record.question


def test_math_worked_solution_equations_hold(samples):
    for record in samples[("math", Split.TRAIN)]:
        equations = re.findall(r"(\d+)([-+*/])(\d+)=(\d+)", record.solution)
        assert equations
        for a, op, b, c in equations:
            a_, b_, c_ = int(a), int(b), int(c)
            expected = {"+": a_ + b_, "-": a_ - b_, "*": a_ * b_, "/": a_ // b_}[op]
            assert expected == c_ and (op != "/" or a_ % b_ == 0), record.solution
        assert equations[-1][3] == record.reference
        assert grade(record.grader, record.solution, record.reference)


def test_list_answers_are_exact(samples):
    for split in Split:
        for record in samples[("lists", split)]:
            assert run_list_program(record.question) == record.reference, record.question
            assert grade(record.grader, record.solution, record.reference)


def test_splits_never_share_a_question(samples):
    for domain in DOMAINS:
        canon = {s: {canonical_question(r.question) for r in samples[(domain, s)]} for s in Split}
        assert not canon[Split.TRAIN] & canon[Split.VALIDATION]
        assert not canon[Split.TRAIN] & canon[Split.TEST]
        assert not canon[Split.VALIDATION] & canon[Split.TEST]
        for split in Split:
            records = samples[(domain, split)]
            assert len({r.id for r in records}) == len(records)
            assert all(r.split is split and split_of(r.question) is split for r in records)


def test_split_is_decided_by_the_question_not_the_seed():
    # The same question generated under another seed or size lands in the same split.
    a = {r.question for r in generate("math", Split.TEST, 300, seed=1, difficulty="easy")}
    b = generate("math", Split.TRAIN, 3000, seed=2, difficulty="easy")
    assert not a & {r.question for r in b}
    assert split_of("  ANA has 3 apples.  ") is split_of("ana has 3 apples.")


def test_generation_is_deterministic_and_seeded():
    for domain in DOMAINS:
        first = generate(domain, Split.TEST, 30, seed=3)
        assert first == generate(domain, Split.TEST, 30, seed=3)
        assert [r.question for r in first] != [
            r.question for r in generate(domain, Split.TEST, 30, seed=4)
        ]


@pytest.mark.parametrize("difficulty", sorted(MATH_DIFFICULTIES))
def test_math_difficulty_bounds(difficulty):
    settings = MATH_DIFFICULTIES[difficulty]
    records = generate("math", Split.TRAIN, 300, seed=0, difficulty=difficulty)
    steps = {r.meta["steps"] for r in records}
    assert min(steps) >= settings.min_steps and max(steps) <= settings.max_steps
    assert len(steps) == settings.max_steps - settings.min_steps + 1
    for record in records:
        results = [int(c) for c in re.findall(r"=(\d+)", record.solution)]
        assert max(results) <= settings.max_value
        assert ("*" in record.solution) <= settings.groups or settings.scaling


def test_insights_are_structured_and_end_in_the_answer(samples):
    for domain in DOMAINS:
        for record in samples[(domain, Split.TEST)]:
            text = record.insights
            positions = [text.index(f"{part}:") for part in ("Goal", "Plan", "Retrieval", "Action")]
            assert positions == sorted(positions) and positions[0] == 0
            action = text[positions[3] :]
            assert action.rstrip(".").replace(" ", "").endswith(record.reference.replace(" ", ""))


def test_unknown_domain_and_difficulty_are_refused():
    with pytest.raises(KeyError, match="known"):
        generate("poetry", Split.TEST, 1)
    with pytest.raises(KeyError, match="difficulty"):
        generate("math", Split.TEST, 1, difficulty="impossible")


def test_jsonl_round_trip(tmp_path, samples):
    records = samples[("lists", Split.TEST)][:20]
    path = tmp_path / "lists.jsonl"
    assert write_jsonl(path, records) == 20
    assert list(read_jsonl(path)) == records
