"""The uniform task record and the split rule every generator shares.

Splits are decided by hashing the canonical question, not by position in a stream: a question
belongs to exactly one split whatever seed or size produced it, so train, validation and test can
never share a question.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Generic, TypeVar


class Split(StrEnum):
    TRAIN = "train"
    VALIDATION = "validation"
    TEST = "test"


# Share of the hash space (per mille) given to each split, in order.
SPLIT_BOUNDS: tuple[tuple[Split, int], ...] = (
    (Split.TRAIN, 800),
    (Split.VALIDATION, 900),
    (Split.TEST, 1000),
)

D = TypeVar("D")  # a domain's difficulty preset

_SPACES = re.compile(r"\s+")


def canonical_question(question: str) -> str:
    """The form of a question that decides its split: case and spacing do not matter."""
    return _SPACES.sub(" ", question.strip().lower())


def question_digest(question: str) -> str:
    return hashlib.sha256(canonical_question(question).encode("utf-8")).hexdigest()


def split_of(question: str) -> Split:
    bucket = int(question_digest(question)[:8], 16) % 1000
    for split, upper in SPLIT_BOUNDS:
        if bucket < upper:
            return split
    raise AssertionError("split bounds must cover 0..999")  # pragma: no cover


@dataclass(frozen=True)
class TaskRecord:
    """One question with everything needed to train on it and to grade an answer to it.

    ``reference`` is the exact final answer as text; ``solution`` a worked solution ending in
    ``Answer: <reference>``; ``insights`` the coordinator-style Goal / Plan / Retrieval / Action
    text; ``grader`` names the function in :mod:`tandem.datasets.graders` that compares answers.
    """

    id: str
    domain: str
    split: Split
    question: str
    reference: str
    solution: str
    insights: str
    grader: str
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["split"] = self.split.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskRecord:
        return cls(
            id=str(data["id"]),
            domain=str(data["domain"]),
            split=Split(data["split"]),
            question=str(data["question"]),
            reference=str(data["reference"]),
            solution=str(data.get("solution", "")),
            insights=str(data.get("insights", "")),
            grader=str(data["grader"]),
            meta=dict(data.get("meta", {})),
        )


def record_id(domain: str, question: str) -> str:
    return f"{domain}-{question_digest(question)[:12]}"


@dataclass(frozen=True)
class Draft:
    """One generated question before it is kept: a generator's part of a :class:`TaskRecord`.

    Drafts are made and mostly thrown away (about four in five are in another split), so the id,
    split and shared fields are only filled in by :func:`distinct_records` for the ones it keeps.
    """

    question: str
    reference: str
    solution: str
    insights: str
    meta: dict[str, Any]


def distinct_records(
    draw: Callable[[random.Random], Draft],
    split: Split,
    *,
    domain: str,
    grader: str,
    difficulty: str,
    seed: int,
    limit: int | None,
    noun: str,
) -> Iterator[TaskRecord]:
    """Records of ``split`` with distinct questions, drawn one after another from ``draw``.

    One RNG seeded by domain, difficulty and seed feeds every draw, and drafts of other splits
    still consume it, so the same arguments always give the same records in the same order:
    committed model data is hashed from these lists. ``limit`` None draws for ever; with a limit,
    a difficulty too narrow to hold that many questions raises instead of looping.
    """
    rng = random.Random(f"{domain}:{difficulty}:{seed}")
    seen: set[str] = set()
    produced = 0
    attempts = 0
    while limit is None or produced < limit:
        attempts += 1
        if limit is not None and attempts > 200 * limit + 10_000:
            raise RuntimeError(f"could not generate {limit} distinct {split} {noun}")
        draft = draw(rng)
        if split_of(draft.question) is not split or draft.question in seen:
            continue
        seen.add(draft.question)
        produced += 1
        yield TaskRecord(
            id=record_id(domain, draft.question),
            domain=domain,
            split=split,
            question=draft.question,
            reference=draft.reference,
            solution=draft.solution,
            insights=draft.insights,
            grader=grader,
            meta={**draft.meta, "difficulty": difficulty},
        )


@dataclass(frozen=True)
class DomainGenerator(Generic[D]):
    """A generated domain: its name, how its answers are graded, its difficulty presets and how
    one problem of a preset is drawn. Called like a function, it gives ``count`` distinct records
    of ``split``; the same arguments always give the same list."""

    domain: str
    grader: str
    noun: str  # what a problem is called in errors ("questions", "programs")
    difficulties: Mapping[str, D]
    problem: Callable[[random.Random, D], Draft]

    def __call__(
        self, split: Split, count: int, *, seed: int = 0, difficulty: str = "lab"
    ) -> list[TaskRecord]:
        settings = self.difficulties[difficulty]
        return list(
            distinct_records(
                lambda rng: self.problem(rng, settings),
                split,
                domain=self.domain,
                grader=self.grader,
                difficulty=difficulty,
                seed=seed,
                limit=count,
                noun=self.noun,
            )
        )


def write_jsonl(path: Path, records: Iterable[TaskRecord]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record.to_dict(), sort_keys=True) + "\n")
            count += 1
    return count


def read_jsonl(path: Path) -> Iterator[TaskRecord]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield TaskRecord.from_dict(json.loads(line))
