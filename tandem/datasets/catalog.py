"""Shopping questions over a fixed catalogue of invented goods: a domain whose hard part is
knowledge.

The catalogue (``CATALOG``: a few hundred made-up item names, each with a price) is fixed by its
own seed, independent of the question seed, and is never stated in a question. A question asks
the total price of a few items in given counts, so answering it needs two things: *recalling*
each item's price, which only a model that has learnt the catalogue can do, and a little
arithmetic (count times price, then a sum), which even a very small model can do once it is told the
prices. That is the setting Tandem is built for: a larger model's short insight (the prices)
makes a smaller model's full solution right.

Insights: Retrieval (each item's price, first, because it is what the executor lacks), then
Plan; Goal is implied by the question.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache

from tandem.datasets.records import DomainGenerator, Draft

DOMAIN = "catalog"
# The catalogue's own seed: changing it changes the world every model of this domain learnt.
WORLD_SEED = "catalog-world-v1"
CATALOG_SIZE = 500
MIN_PRICE, MAX_PRICE = 2, 9
_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"


@dataclass(frozen=True)
class CatalogDifficulty:
    min_items: int
    max_items: int
    min_count: int
    max_count: int


DIFFICULTIES: dict[str, CatalogDifficulty] = {
    "easy": CatalogDifficulty(1, 2, 1, 5),
    "lab": CatalogDifficulty(2, 3, 2, 9),
}

_TEMPLATES = (
    "Buy {goods}. What is the total price?",
    "A basket holds {goods}. What does it cost?",
)


@cache
def catalog() -> dict[str, int]:
    """Item name → price. A name is two consonant-vowel syllables joined by a hyphen (``ki-ro``),
    so a tokenizer cannot make it one token: recalling a price means binding two syllables
    that each occur in many names, which takes a model's capacity, not one embedding row."""
    rng = random.Random(WORLD_SEED)
    syllables = [c + v for c in _CONSONANTS for v in _VOWELS]
    names: set[str] = set()
    while len(names) < CATALOG_SIZE:
        names.add(f"{rng.choice(syllables)}-{rng.choice(syllables)}")
    return {name: rng.randint(MIN_PRICE, MAX_PRICE) for name in sorted(names)}


def _goods(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _problem(rng: random.Random, d: CatalogDifficulty) -> Draft:
    prices = catalog()
    names = rng.sample(sorted(prices), rng.randint(d.min_items, d.max_items))
    counts = [rng.randint(d.min_count, d.max_count) for _ in names]
    totals = [count * prices[name] for name, count in zip(names, counts, strict=True)]
    answer = str(sum(totals))
    goods = _goods([f"{count} {name}" for name, count in zip(names, counts, strict=True)])
    question = rng.choice(_TEMPLATES).format(goods=goods)
    steps = [
        f"{count} {name} at {prices[name]} cost {total}."
        for name, count, total in zip(names, counts, totals, strict=True)
    ]
    total_line = " + ".join(map(str, totals)) + f" = {answer}." if len(totals) > 1 else ""
    solution = " ".join([*steps, total_line]).strip() + f" Answer: {answer}"
    insights = (
        "Retrieval: "
        + "; ".join(f"{name} costs {prices[name]}" for name in names)
        + ". Plan: count times price, then the sum."
    )
    return Draft(question, answer, solution, insights, {"steps": len(names)})


generate = DomainGenerator(DOMAIN, "math", "questions", DIFFICULTIES, _problem)
