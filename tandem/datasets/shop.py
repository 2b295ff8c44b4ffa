"""Shopping totals over a known catalogue: the lab pair's main domain.

A fixed catalogue (``catalogue()``: 300 invented goods, a price from 2 to 9 each) is the world.
A question asks the total price of two or three goods in given counts and states the price of
some of them ("Buy 3 ba-zu at 4, 2 te-ka and 5 mo-ri."); the others must be recalled. How many
prices a question leaves out is drawn from :data:`NEED_MIX`, so some questions need no fact
from anyone (every price is stated), some one and some several. The arithmetic (count times
price by counting up, then a running sum written column by column) is what the small model is
for.

Insights: ``Retrieval`` (exactly the missing prices, first: what the executor lacks), then a
short ``Plan``. The worked solution states every line, so answering alone costs several times
the tokens of the insights, as a long chain of thought does against the paper's insights.

The ``reader`` preset draws every price afresh for each question (see
:mod:`tandem.datasets.worlds`): the executor's training data, from which no catalogue can be
learnt.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache

from tandem.datasets.records import DomainGenerator, Draft
from tandem.datasets.worlds import NeedMix, fixed_table, retrieval, stated_mask, syllable_names
from tandem.datasets.written import column_add

DOMAIN = "shop"
# The catalogue's own seed: changing it changes the world every model of this domain learnt.
WORLD_SEED = "shop-world-v1"
CATALOGUE_SIZE = 300
MIN_PRICE, MAX_PRICE = 2, 9
# Chance of 0, 1, 2 or 3 prices left out of a question.
NEED_MIX = NeedMix((0.40, 0.25, 0.20, 0.15))
PLAN = "Plan: count times price, then add."


@dataclass(frozen=True)
class ShopDifficulty:
    min_items: int
    max_items: int
    min_count: int
    max_count: int
    fixed_world: bool


DIFFICULTIES: dict[str, ShopDifficulty] = {
    "lab": ShopDifficulty(2, 3, 2, 6, fixed_world=True),
    "reader": ShopDifficulty(2, 3, 2, 6, fixed_world=False),
}


@cache
def catalogue() -> dict[str, int]:
    """Good → price. A name is two syllables joined by a hyphen (``ki-ro``)."""
    names = syllable_names(WORLD_SEED, CATALOGUE_SIZE, capitalised=False, hyphen=True)
    return fixed_table(WORLD_SEED, names, MIN_PRICE, MAX_PRICE)


def _goods(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _problem(rng: random.Random, d: ShopDifficulty) -> Draft:
    table = catalogue()
    missing = NEED_MIX.draw(rng)
    count_of_items = rng.randint(max(d.min_items, missing), d.max_items)
    names = rng.sample(sorted(table), count_of_items)
    prices = [table[name] if d.fixed_world else rng.randint(MIN_PRICE, MAX_PRICE) for name in names]
    counts = [rng.randint(d.min_count, d.max_count) for _ in names]
    stated = stated_mask(rng, count_of_items, missing)
    parts = [
        f"{count} {name} at {price}" if shown else f"{count} {name}"
        for name, price, count, shown in zip(names, prices, counts, stated, strict=True)
    ]
    question = f"Buy {_goods(parts)}. What is the total price?"
    totals = [count * price for count, price in zip(counts, prices, strict=True)]
    # Count times price by counting up in steps of the price: "3 ba-zu at 4: 4, 8, 12."
    lines = [
        f"{count} {name} at {price}: {', '.join(str(price * k) for k in range(1, count + 1))}."
        for name, price, count in zip(names, prices, counts, strict=True)
    ]
    running = totals[0]
    for total in totals[1:]:
        lines.append(column_add(running, total))
        running += total
    answer = str(running)
    solution = " ".join(lines) + f" Answer: {answer}"
    facts = [
        (name, price) for name, price, shown in zip(names, prices, stated, strict=True) if not shown
    ]
    insights = retrieval(facts) + PLAN
    meta = {"steps": count_of_items, "missing_facts": missing}
    return Draft(question, answer, solution, insights, meta)


generate = DomainGenerator(DOMAIN, "math", "questions", DIFFICULTIES, _problem)
