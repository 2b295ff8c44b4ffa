"""Multi-step arithmetic word problems with exact answers, worked solutions and insights.

A problem tracks one quantity through a few events (buying, giving away, packs, doubling, sharing
into boxes). Difficulty presets bound the number of steps and the size of the numbers; the
classifier pipeline uses the easier presets, the lab model pair the ``lab`` preset.

Insights follow the coordinator's structure, each part adding information the executor would
otherwise have to work out: Goal (what is asked), Plan (the operation each event stands for),
Retrieval (the numbers in order), Action (each equation with its result).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tandem.datasets.records import DomainGenerator, Draft

DOMAIN = "math"

NAMES = (
    "Ana",
    "Ben",
    "Cara",
    "Dev",
    "Eli",
    "Fay",
    "Gus",
    "Hana",
    "Ivo",
    "Jo",
    "Kai",
    "Lea",
    "Max",
    "Nia",
    "Omar",
    "Pia",
    "Raj",
    "Sol",
    "Tom",
    "Uma",
    "Vic",
    "Wen",
    "Yara",
    "Zed",
)
ITEMS = (
    "apples",
    "marbles",
    "stickers",
    "coins",
    "books",
    "pens",
    "cards",
    "shells",
    "stamps",
    "beads",
    "cookies",
    "eggs",
    "plums",
    "rocks",
    "tickets",
    "toys",
)
FRIENDS = ("a friend", "her brother", "his sister", "a neighbour", "the teacher", "a cousin")


@dataclass(frozen=True)
class MathDifficulty:
    """Bounds of a generated problem. ``max_value`` caps every intermediate result."""

    min_steps: int
    max_steps: int
    max_start: int
    max_operand: int
    max_value: int
    groups: bool
    scaling: bool


DIFFICULTIES: dict[str, MathDifficulty] = {
    "easy": MathDifficulty(1, 2, 20, 10, 60, groups=False, scaling=False),
    "medium": MathDifficulty(1, 3, 40, 20, 150, groups=True, scaling=False),
    "hard": MathDifficulty(2, 4, 60, 30, 400, groups=True, scaling=True),
    "lab": MathDifficulty(1, 4, 50, 30, 300, groups=True, scaling=True),
}


@dataclass(frozen=True)
class _Step:
    sentence: str  # the event as the question tells it
    said: str  # the event restated in the worked solution
    plan: str  # the operation, for the Plan insight
    retrieval: str  # the numbers it uses, for the Retrieval insight
    equations: tuple[str, ...]
    result: int


def _add(rng: random.Random, x: int, d: MathDifficulty, items: str) -> _Step | None:
    b = rng.randint(2, d.max_operand)
    if x + b > d.max_value:
        return None
    verb = rng.choice(("buys", "finds", "wins", "gets"))
    return _Step(
        f"Then {{p}} {verb} {b} more {items}.",
        f"{verb} {b}",
        "add",
        f"+{b}",
        (f"{x}+{b}={x + b}",),
        x + b,
    )


def _subtract(rng: random.Random, x: int, d: MathDifficulty, items: str) -> _Step | None:
    if x < 3:
        return None
    b = rng.randint(1, min(d.max_operand, x - 1))
    verb, tail = rng.choice(
        (("gives", f" to {rng.choice(FRIENDS)}"), ("loses", ""), ("sells", ""), ("uses", ""))
    )
    return _Step(
        f"Then {{p}} {verb} {b} {items}{tail}.",
        f"{verb} {b}",
        "subtract",
        f"-{b}",
        (f"{x}-{b}={x - b}",),
        x - b,
    )


def _groups(rng: random.Random, x: int, d: MathDifficulty, items: str) -> _Step | None:
    if not d.groups:
        return None
    k, m = rng.randint(2, 9), rng.randint(2, 12)
    if x + k * m > d.max_value:
        return None
    pack = rng.choice(("bags", "boxes", "packs"))
    return _Step(
        f"Then {{p}} buys {k} {pack} with {m} {items} each.",
        f"buys {k} {pack} of {m}",
        "packs",
        f"+{k}x{m}",
        (f"{k}*{m}={k * m}", f"{x}+{k * m}={x + k * m}"),
        x + k * m,
    )


def _scale(rng: random.Random, x: int, d: MathDifficulty, items: str) -> _Step | None:
    if not d.scaling:
        return None
    if rng.random() < 0.5:
        factor, word = rng.choice(((2, "doubles"), (3, "triples")))
        if x * factor > d.max_value:
            return None
        return _Step(
            f"Then {{p}} {word} the {items}.",
            word,
            "multiply",
            f"x{factor}",
            (f"{x}*{factor}={x * factor}",),
            x * factor,
        )
    divisors = [k for k in (2, 3, 4, 5) if x % k == 0 and x // k >= 2]
    if not divisors:
        return None
    k = rng.choice(divisors)
    return _Step(
        f"Then {{p}} shares the {items} equally into {k} boxes and keeps one box.",
        f"keeps 1 of {k} boxes",
        "divide",
        f"/{k}",
        (f"{x}/{k}={x // k}",),
        x // k,
    )


_STEP_KINDS = (_add, _subtract, _groups, _scale)


def _problem(rng: random.Random, d: MathDifficulty) -> Draft:
    name, items = rng.choice(NAMES), rng.choice(ITEMS)
    pronoun = rng.choice(("he", "she"))
    n_steps = rng.randint(d.min_steps, d.max_steps)
    x = start = rng.randint(3, d.max_start)
    steps: list[_Step] = []
    while len(steps) < n_steps:
        step = rng.choice(_STEP_KINDS)(rng, x, d, items)
        if step is not None:
            steps.append(step)
            x = step.result
    body = " ".join(step.sentence.format(p=pronoun) for step in steps)
    question = f"{name} has {start} {items}. {body} How many {items} does {name} have now?"
    solution = " ".join(
        [f"{name} starts with {start} {items}."]
        + [f"{pronoun.capitalize()} {step.said}: {', '.join(step.equations)}." for step in steps]
        + [f"Answer: {x}"]
    )
    insights = (
        f"Goal: {items} now. "
        f"Plan: {', '.join(step.plan for step in steps)}. "
        f"Retrieval: {start} {' '.join(step.retrieval for step in steps)}. "
        f"Action: {', '.join(eq for step in steps for eq in step.equations)}."
    )
    return Draft(question, str(x), solution, insights, {"steps": n_steps})


generate = DomainGenerator(DOMAIN, "math", "problems", DIFFICULTIES, _problem)
