"""Every generated domain behind one call, so tools pick a domain by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from shared.datasets import arithmetic, catalog, list_programs, math_word
from shared.datasets.records import Split, TaskRecord


class Generator(Protocol):
    def __call__(
        self, split: Split, count: int, *, seed: int = ..., difficulty: str = ...
    ) -> list[TaskRecord]: ...


GENERATORS: dict[str, Generator] = {
    math_word.DOMAIN: math_word.generate,
    list_programs.DOMAIN: list_programs.generate,
    arithmetic.DOMAIN: arithmetic.generate,
    catalog.DOMAIN: catalog.generate,
}

DIFFICULTIES: dict[str, Callable[[], list[str]]] = {
    math_word.DOMAIN: lambda: sorted(math_word.DIFFICULTIES),
    list_programs.DOMAIN: lambda: sorted(list_programs.DIFFICULTIES),
    arithmetic.DOMAIN: lambda: sorted(arithmetic.DIFFICULTIES),
    catalog.DOMAIN: lambda: sorted(catalog.DIFFICULTIES),
}


def generate(
    domain: str, split: Split | str, count: int, *, seed: int = 0, difficulty: str = "lab"
) -> list[TaskRecord]:
    """``count`` records of one domain and split (a KeyError names the known domains)."""
    try:
        generator = GENERATORS[domain]
    except KeyError as error:
        raise KeyError(f"unknown domain {domain!r}; known: {sorted(GENERATORS)}") from error
    if difficulty not in DIFFICULTIES[domain]():
        raise KeyError(
            f"unknown difficulty {difficulty!r} for {domain}; known: {DIFFICULTIES[domain]()}"
        )
    return generator(Split(split), count, seed=seed, difficulty=difficulty)
