"""Small list programs to evaluate: a structurally different domain from word problems.

A question gives a short list of digits and a pipeline of two to four operations (reverse, sort,
take, drop, add to each, keep evens or odds), sometimes ending in a reduction (sum, max, min,
length). The answer is a list or a number. There is no story to read; the work is tracking a
changing list exactly, so a model's skill on word problems says little about it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from tandem.datasets.records import DomainGenerator, Draft

DOMAIN = "lists"

ListOp = tuple[str, str, str, Callable[[list[int]], list[int]]]  # sentence, plan, fact, function


@dataclass(frozen=True)
class ListDifficulty:
    min_ops: int
    max_ops: int
    min_length: int
    max_length: int


DIFFICULTIES: dict[str, ListDifficulty] = {
    "easy": ListDifficulty(1, 2, 3, 4),
    "medium": ListDifficulty(2, 3, 3, 5),
    "hard": ListDifficulty(3, 4, 4, 6),
    "lab": ListDifficulty(2, 4, 3, 6),
}

REDUCTIONS: dict[str, tuple[str, Callable[[list[int]], int]]] = {
    "sum": ("Then take the sum.", sum),
    "max": ("Then take the largest item.", max),
    "min": ("Then take the smallest item.", min),
    "len": ("Then count the items.", len),
}


def render(items: list[int]) -> str:
    return "[" + ", ".join(str(item) for item in items) + "]"


def _op(rng: random.Random, items: list[int]) -> ListOp | None:
    kind = rng.choice(("reverse", "sort", "take", "drop", "add", "evens", "odds"))
    if kind == "reverse":
        return "Reverse it.", "reverse", "flip", lambda xs: xs[::-1]
    if kind == "sort":
        return "Sort it.", "sort", "ascending", sorted
    if kind in ("take", "drop") and len(items) >= 3:
        k = rng.randint(1, len(items) - 1)
        if kind == "take":
            return (f"Keep the first {k}.", f"take {k}", f"first {k} stay", lambda xs: xs[:k])
        return (f"Drop the first {k}.", f"drop {k}", f"first {k} go", lambda xs: xs[k:])
    if kind == "add":
        n = rng.randint(1, 9)
        return (f"Add {n} to each item.", f"add {n}", f"+{n} each", lambda xs: [x + n for x in xs])
    if kind in ("evens", "odds"):
        parity = 0 if kind == "evens" else 1
        kept = [x for x in items if x % 2 == parity]
        if not kept or len(kept) == len(items):
            return None
        word = "even" if parity == 0 else "odd"
        return (
            f"Keep only the {word} items.",
            f"keep {word}",
            f"{word}s stay",
            lambda xs: [x for x in xs if x % 2 == parity],
        )
    return None


def _problem(rng: random.Random, d: ListDifficulty) -> Draft:
    start = [rng.randint(0, 9) for _ in range(rng.randint(d.min_length, d.max_length))]
    n_ops = rng.randint(d.min_ops, d.max_ops)
    reduce = rng.random() < 0.5
    n_list_ops = n_ops - 1 if reduce else n_ops
    items = start
    sentences: list[str] = []
    plans: list[str] = []
    facts: list[str] = []
    said: list[str] = []
    results: list[str] = []
    while len(sentences) < n_list_ops:
        op = _op(rng, items)
        if op is None:
            continue
        sentence, plan, fact, function = op
        items = list(function(items))
        sentences.append(sentence)
        plans.append(plan)
        facts.append(fact)
        said.append(f"{plan.capitalize()}: {render(items)}.")
        results.append(render(items))
    answer: str
    if reduce:
        name = rng.choice(sorted(REDUCTIONS))
        sentence, reduction = REDUCTIONS[name]
        value = reduction(items)
        sentences.append(sentence)
        plans.append(name)
        said.append(f"{name.capitalize()}: {value}.")
        results.append(str(value))
        answer = str(value)
    else:
        answer = render(items)
    question = f"Start with {render(start)}. {' '.join(sentences)} What is the result?"
    solution = f"Start {render(start)}. {' '.join(said)} Answer: {answer}"
    insights = (
        f"Goal: {'a number' if reduce else 'a list'}. "
        f"Plan: {', '.join(plans)}. "
        f"Retrieval: {'; '.join(facts)}. "
        f"Action: {'; '.join(results)}."
    )
    return Draft(question, answer, solution, insights, {"steps": n_ops})


generate = DomainGenerator(DOMAIN, "list", "programs", DIFFICULTIES, _problem)
