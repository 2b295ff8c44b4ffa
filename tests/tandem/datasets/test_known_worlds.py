"""The known-world domains of the v2 lab pair (shop, ages): fixed worlds, exact answers checked
by interpreters written from the question and the world alone, an insight need that varies, and
per-question worlds for the executor's training data."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from tandem.datasets import Split, generate, grade
from tandem.datasets.ages import MAX_AGE, MIN_AGE, REGISTER_SIZE, register
from tandem.datasets.records import canonical_question
from tandem.datasets.shop import CATALOGUE_SIZE, MAX_PRICE, MIN_PRICE, catalogue
from tandem.datasets.written import column_add, column_subtract

GOOD = re.compile(r"(\d+) ([a-z]{2}-[a-z]{2})(?: at (\d+))?")
PERSON = re.compile(r"([A-Z][a-z]{3})(?: \((\d+)\))?")
FACT = re.compile(r"([A-Za-z-]+) (\d+)")


def shop_items(question: str) -> list[tuple[int, str, int | None]]:
    return [(int(n), name, int(p) if p else None) for n, name, p in GOOD.findall(question)]


def ages_people(question: str) -> list[tuple[str, int | None]]:
    body = question.split(": how many", 1)[0]
    return [(name, int(age) if age else None) for name, age in PERSON.findall(body)]


def retrieved(insights: str) -> list[tuple[str, int]]:
    if not insights.startswith("Retrieval: "):
        return []
    facts = insights.removeprefix("Retrieval: ").split(". Plan:", 1)[0]
    return [(name, int(value)) for name, value in FACT.findall(facts)]


@pytest.fixture(scope="module")
def shop_test():
    return generate("shop", Split.TEST, 1000, seed=3)


@pytest.fixture(scope="module")
def ages_test():
    return generate("ages", Split.TEST, 1000, seed=3)


def test_the_worlds_are_fixed_and_bounded():
    prices, ages = catalogue(), register()
    assert len(prices) == CATALOGUE_SIZE and len(ages) == REGISTER_SIZE
    assert set(prices.values()) == set(range(MIN_PRICE, MAX_PRICE + 1))
    assert min(ages.values()) >= MIN_AGE and max(ages.values()) <= MAX_AGE
    assert all(re.fullmatch(r"[a-z]{2}-[a-z]{2}", name) for name in prices)
    assert all(re.fullmatch(r"[A-Z][a-z]{3}", name) for name in ages)


def test_shop_answers_follow_from_the_question_and_the_catalogue(shop_test):
    prices = catalogue()
    for record in shop_test:
        items = shop_items(record.question)
        assert 2 <= len(items) <= 3, record.question
        # A stated price is the catalogue's: the world is consistent.
        assert all(p is None or p == prices[name] for _, name, p in items)
        assert int(record.reference) == sum(n * prices[name] for n, name, _ in items)
        assert grade(record.grader, record.solution, record.reference)
        missing = [(name, prices[name]) for _, name, p in items if p is None]
        assert record.meta["missing_facts"] == len(missing)
        # Insights: exactly the left-out prices, first, then the plan.
        assert retrieved(record.insights) == missing
        assert record.insights.endswith("Plan: count times price, then add.")


def test_ages_answers_follow_from_the_question_and_the_register(ages_test):
    ages = register()
    for record in ages_test:
        people = ages_people(record.question)
        assert 2 <= len(people) <= 3, record.question
        assert all(a is None or a == ages[name] for name, a in people)
        values = [ages[name] for name, _ in people]
        assert len(set(values)) == len(values)
        assert int(record.reference) == max(values) - min(values)
        assert grade(record.grader, record.solution, record.reference)
        missing = [(name, ages[name]) for name, a in people if a is None]
        assert record.meta["missing_facts"] == len(missing)
        assert retrieved(record.insights) == missing


def test_the_insight_need_varies_from_none_to_several(shop_test, ages_test):
    for records in (shop_test, ages_test):
        need = Counter(record.meta["missing_facts"] for record in records)
        assert set(need) == {0, 1, 2, 3}
        assert all(need[k] >= 0.12 * len(records) for k in need)
        # A question that needs nothing gets insights with no facts at all.
        assert all(
            record.insights.startswith("Plan:")
            for record in records
            if record.meta["missing_facts"] == 0
        )


def test_the_reader_preset_redraws_every_fact_per_question():
    prices = catalogue()
    seen: dict[str, set[int]] = {}
    for record in generate("shop", Split.TRAIN, 3000, seed=1, difficulty="reader"):
        items = shop_items(record.question)
        stated = {name: p for _, name, p in items if p is not None}
        facts = dict(retrieved(record.insights)) | stated
        assert int(record.reference) == sum(n * facts[name] for n, name, _ in items)
        for name, price in facts.items():
            seen.setdefault(name, set()).add(price)
    # Across questions one good has many prices: there is no catalogue to learn.
    multi = [name for name, values in seen.items() if len(values) > 1]
    assert len(multi) > 0.9 * len(seen)
    agree = sum(len(values) == 1 and prices[name] in values for name, values in seen.items())
    assert agree < 0.1 * len(seen)
    ages = generate("ages", Split.TRAIN, 500, seed=1, difficulty="reader")
    assert any(
        a is not None and a != register()[name]
        for record in ages
        for name, a in ages_people(record.question)
    )


def test_splits_are_disjoint_and_generation_is_seeded():
    for domain in ("shop", "ages"):
        questions = {
            split: {canonical_question(r.question) for r in generate(domain, split, 400, seed=5)}
            for split in Split
        }
        assert not questions[Split.TRAIN] & questions[Split.VALIDATION]
        assert not questions[Split.TRAIN] & questions[Split.TEST]
        assert not questions[Split.VALIDATION] & questions[Split.TEST]
        first = generate(domain, Split.TEST, 30, seed=3)
        assert first == generate(domain, Split.TEST, 30, seed=3)
        assert first != generate(domain, Split.TEST, 30, seed=4)


def test_written_arithmetic_is_exact_column_by_column():
    for a in range(0, 250, 7):
        for b in range(0, 120, 3):
            text = column_add(a, b)
            assert text.startswith(f"{a} + {b}: ") and text.endswith(f", so {a + b}.")
            for x, y, carry, total in re.findall(r"(\d) \+ (\d)( \+ 1)? = (\d+)", text):
                assert int(x) + int(y) + bool(carry) == int(total)
            if a >= b:
                text = column_subtract(a, b)
                assert text.endswith(f", so {a - b}.")
                for top, y, result in re.findall(r"(\d+) - (\d) = (\d+)", text.split(": ", 1)[1]):
                    assert int(top) - int(y) == int(result) and 0 <= int(result) <= 9
    assert column_add(78, 42) == "78 + 42: 8 + 2 = 10, 7 + 4 + 1 = 12, so 120."
    assert column_subtract(81, 19) == "81 - 19: 11 - 9 = 2, 7 - 1 = 6, so 62."
    with pytest.raises(ValueError, match="negative"):
        column_subtract(3, 5)
