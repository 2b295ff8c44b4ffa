"""Age gaps over a known register of people: the lab pair's second domain.

A fixed register (``register()``: 300 invented people, an age from 10 to 89 each) is the world.
A question names two or three people, states the age of some of them ("Kiro, Tamu (27) and
Besa") and asks how many years older the oldest is than the youngest; the other ages must be
recalled. The surface form (capitalised names, ages in brackets, a comparison) and the skill
(find the extremes, then subtract column by column) differ from :mod:`tandem.datasets.shop`,
while the insight need varies the same way (none, one or several ages left out), so a stop
rule learnt on one can be measured on the other without retraining.

The ``reader`` preset draws every age afresh for each question: the executor's training data.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache

from tandem.datasets.records import DomainGenerator, Draft
from tandem.datasets.worlds import NeedMix, fixed_table, retrieval, stated_mask, syllable_names
from tandem.datasets.written import column_subtract

DOMAIN = "ages"
WORLD_SEED = "ages-world-v1"
REGISTER_SIZE = 300
MIN_AGE, MAX_AGE = 10, 89
NEED_MIX = NeedMix((0.40, 0.25, 0.20, 0.15))
PLAN = "Plan: oldest minus youngest."


@dataclass(frozen=True)
class AgesDifficulty:
    min_people: int
    max_people: int
    fixed_world: bool


DIFFICULTIES: dict[str, AgesDifficulty] = {
    "lab": AgesDifficulty(2, 3, fixed_world=True),
    "reader": AgesDifficulty(2, 3, fixed_world=False),
}


@cache
def register() -> dict[str, int]:
    """Person → age. A name is two syllables, capitalised (``Kiro``)."""
    names = syllable_names(WORLD_SEED, REGISTER_SIZE, capitalised=True, hyphen=False)
    return fixed_table(WORLD_SEED, names, MIN_AGE, MAX_AGE)


def _people(parts: list[str]) -> str:
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _problem(rng: random.Random, d: AgesDifficulty) -> Draft:
    table = register()
    missing = NEED_MIX.draw(rng)
    count = rng.randint(max(d.min_people, missing), d.max_people)
    while True:  # distinct ages, so "the oldest" and "the youngest" are one person each
        names = rng.sample(sorted(table), count)
        ages = [table[name] if d.fixed_world else rng.randint(MIN_AGE, MAX_AGE) for name in names]
        if len(set(ages)) == count:
            break
    stated = stated_mask(rng, count, missing)
    parts = [
        f"{name} ({age})" if shown else name
        for name, age, shown in zip(names, ages, stated, strict=True)
    ]
    question = f"{_people(parts)}: how many years older is the oldest than the youngest?"
    oldest, youngest = max(ages), min(ages)
    answer = str(oldest - youngest)
    lines = [f"{name} is {age}." for name, age in zip(names, ages, strict=True)]
    lines.append(f"Oldest {oldest}, youngest {youngest}. {column_subtract(oldest, youngest)}")
    solution = " ".join(lines) + f" Answer: {answer}"
    facts = [(name, age) for name, age, shown in zip(names, ages, stated, strict=True) if not shown]
    insights = retrieval(facts) + PLAN
    meta = {"steps": count, "missing_facts": missing}
    return Draft(question, answer, solution, insights, meta)


generate = DomainGenerator(DOMAIN, "math", "questions", DIFFICULTIES, _problem)
