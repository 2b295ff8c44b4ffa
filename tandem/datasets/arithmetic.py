"""Bare arithmetic expressions ("What is 17 * 3 + 12?") with exact answers.

The one domain the simulator engine can answer: it evaluates the first arithmetic expression of
a question and writes insights that work it out step by step (see
:mod:`services.engine.backends.sim`), so a classifier collected on it has a real signal to
learn. The shipped simulator-trained classifier is collected on this domain. Real models find it
easy at two operands and hard at four.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction

from tandem.datasets.records import DomainGenerator, Draft

DOMAIN = "arithmetic"


@dataclass(frozen=True)
class ArithmeticDifficulty:
    min_operands: int
    max_operands: int
    max_operand: int


DIFFICULTIES: dict[str, ArithmeticDifficulty] = {
    "easy": ArithmeticDifficulty(2, 2, 20),
    "medium": ArithmeticDifficulty(2, 3, 40),
    "hard": ArithmeticDifficulty(3, 4, 60),
    # The registry's default preset: the two-to-four-operand mix the simulator model saw.
    "lab": ArithmeticDifficulty(2, 4, 60),
}


def _value(terms: list[int], ops: list[str]) -> Fraction:
    """Exact value with the usual precedence (only + - * occur, so no division by zero)."""
    products: list[Fraction] = [Fraction(terms[0])]
    signs: list[int] = [1]
    for op, term in zip(ops, terms[1:], strict=True):
        if op == "*":
            products[-1] *= term
        else:
            products.append(Fraction(term))
            signs.append(1 if op == "+" else -1)
    return sum((s * p for s, p in zip(signs, products, strict=True)), Fraction(0))


def _problem(rng: random.Random, d: ArithmeticDifficulty) -> Draft:
    count = rng.randint(d.min_operands, d.max_operands)
    terms = [rng.randint(2, d.max_operand) for _ in range(count)]
    ops = [rng.choice("+-*") for _ in terms[1:]]
    expression = str(terms[0]) + "".join(f" {o} {t}" for o, t in zip(ops, terms[1:], strict=True))
    value = _value(terms, ops)
    answer = str(value.numerator) if value.denominator == 1 else str(value)
    question = f"What is {expression}?"
    solution = f"{expression} = {answer}. Answer: {answer}"
    insights = (
        f"Goal: the value of {expression}. "
        "Plan: multiply first, then add and subtract from left to right. "
        f"Retrieval: {', '.join(str(t) for t in terms)}. "
        f"Action: {expression} = {answer}."
    )
    return Draft(question, answer, solution, insights, {"operands": count})


generate = DomainGenerator(DOMAIN, "math", "expressions", DIFFICULTIES, _problem)
