"""The catalogue domain: a fixed world of prices that questions never state."""

from __future__ import annotations

import re

from tandem.datasets import Split, generate
from tandem.datasets.catalog import CATALOG_SIZE, MAX_PRICE, MIN_PRICE, catalog

ITEM = re.compile(r"(\d+) ([a-z]{2}-[a-z]{2})")


def test_the_catalogue_is_fixed_and_bounded() -> None:
    prices = catalog()
    assert len(prices) == CATALOG_SIZE
    assert all(MIN_PRICE <= price <= MAX_PRICE for price in prices.values())
    assert all(re.fullmatch(r"[a-z]{2}-[a-z]{2}", name) for name in prices)
    # The world does not depend on the question seed: two seeds, one catalogue.
    one = generate("catalog", Split.TRAIN, 50, seed=1)
    other = generate("catalog", Split.TRAIN, 50, seed=2)
    assert one != other
    for record in one + other:
        for _, name in ITEM.findall(record.question):
            assert f"{name} costs {prices[name]}" in record.insights


def test_answers_are_exact_and_prices_are_never_in_the_question() -> None:
    prices = catalog()
    for record in generate("catalog", Split.TEST, 200, seed=3):
        items = ITEM.findall(record.question)
        assert 2 <= len(items) <= 3
        assert int(record.reference) == sum(int(n) * prices[name] for n, name in items)
        assert record.solution.endswith(f"Answer: {record.reference}")
        # Every number in the question is a count: no price is ever stated.
        assert sorted(re.findall(r"\d+", record.question)) == sorted(n for n, _ in items)
        assert record.insights.startswith("Retrieval: ")  # what the executor lacks comes first


def test_splits_never_share_a_question() -> None:
    questions = {
        split: {r.question for r in generate("catalog", split, 300, seed=5)} for split in Split
    }
    assert not questions[Split.TRAIN] & questions[Split.VALIDATION]
    assert not questions[Split.TRAIN] & questions[Split.TEST]
    assert not questions[Split.VALIDATION] & questions[Split.TEST]
