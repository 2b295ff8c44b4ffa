"""Known worlds: fixed tables of facts (a price per good, an age per person) that questions
draw on, and the rule that decides which facts a question states and which it leaves out.

A world is fixed by its own seed, independent of the question seed. Its facts are what a large
model can learn and a small one must be told. Each question states some facts in its text and
leaves the others out, so the facts it *needs* from elsewhere (its insight need) vary from
none to several.

The same generator also draws questions over a *per-question* world (``fixed_world=False``):
every fact redrawn for each question, so no table exists to learn. A model trained only on
those questions learns to read facts from its prompt and cannot learn them itself, which is
what makes the lab executor weak alone for a structural reason, not a training budget.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

CONSONANTS = "bdfgklmnprstvz"
VOWELS = "aeiou"


@dataclass(frozen=True)
class NeedMix:
    """How many facts a question leaves out: ``weights[k]`` is the chance of ``k`` missing."""

    weights: tuple[float, ...]

    def draw(self, rng: random.Random) -> int:
        return rng.choices(range(len(self.weights)), weights=self.weights)[0]


def syllable_names(seed: str, count: int, *, capitalised: bool, hyphen: bool) -> list[str]:
    """``count`` distinct two-syllable names (``ki-ro`` or ``Kiro``), fixed by ``seed``."""
    rng = random.Random(seed)
    syllables = [c + v for c in CONSONANTS for v in VOWELS]
    names: set[str] = set()
    while len(names) < count:
        first, second = rng.choice(syllables), rng.choice(syllables)
        name = f"{first}-{second}" if hyphen else first + second
        names.add(name.capitalize() if capitalised else name)
    return sorted(names)


def fixed_table(seed: str, names: Sequence[str], low: int, high: int) -> dict[str, int]:
    """One value in ``[low, high]`` per name, fixed by ``seed``."""
    rng = random.Random(f"{seed}:values")
    return {name: rng.randint(low, high) for name in names}


def stated_mask(rng: random.Random, items: int, missing: int) -> list[bool]:
    """Which of ``items`` facts a question states: all but ``missing`` of them, at random."""
    hidden = set(rng.sample(range(items), missing))
    return [i not in hidden for i in range(items)]


def retrieval(facts: Sequence[tuple[str, int]]) -> str:
    """The Retrieval insight: the facts a question leaves out, or nothing when none is."""
    if not facts:
        return ""
    return "Retrieval: " + "; ".join(f"{name} {value}" for name, value in facts) + ". "
