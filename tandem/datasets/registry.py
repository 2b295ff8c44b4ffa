"""Every generated domain behind one call, so tools pick a domain by name."""

from __future__ import annotations

from typing import Any

from tandem.datasets import ages, arithmetic, catalog, list_programs, math_word, shop
from tandem.datasets.records import DomainGenerator, Split, TaskRecord

GENERATORS: dict[str, DomainGenerator[Any]] = {
    module.generate.domain: module.generate
    for module in (math_word, list_programs, arithmetic, catalog, shop, ages)
}


def generate(
    domain: str, split: Split | str, count: int, *, seed: int = 0, difficulty: str = "lab"
) -> list[TaskRecord]:
    """``count`` records of one domain and split (a KeyError names the known domains)."""
    try:
        generator = GENERATORS[domain]
    except KeyError as error:
        raise KeyError(f"unknown domain {domain!r}; known: {sorted(GENERATORS)}") from error
    known = sorted(generator.difficulties)
    if difficulty not in known:
        raise KeyError(f"unknown difficulty {difficulty!r} for {domain}; known: {known}")
    return generator(Split(split), count, seed=seed, difficulty=difficulty)
