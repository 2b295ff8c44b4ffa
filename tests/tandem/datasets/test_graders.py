"""Answer extraction and normalisation of numbers, fractions and lists."""

from __future__ import annotations

from fractions import Fraction

import pytest

from tandem.datasets.graders import extract_answer, grade, normalise_list, normalise_number


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("42", Fraction(42)),
        ("-7", Fraction(-7)),
        ("1,200", Fraction(1200)),
        ("$1,200.50", Fraction(240100, 200)),
        ("3/4", Fraction(3, 4)),
        ("6/8", Fraction(3, 4)),
        ("0.75", Fraction(3, 4)),
        ("1 1/2", Fraction(3, 2)),
        ("-1 1/2", Fraction(-3, 2)),
        ("\\frac{3}{4}", Fraction(3, 4)),
        ("\\dfrac{10}{4}", Fraction(5, 2)),
        ("50%", Fraction(1, 2)),
        ("12.", Fraction(12)),
        (".5", Fraction(1, 2)),
    ],
)
def test_normalise_number(text, value):
    assert normalise_number(text) == value


@pytest.mark.parametrize("text", ["", "abc", "3/0", "12 apples", "1,2,3", "[1, 2]"])
def test_not_a_number(text):
    assert normalise_number(text) is None


def test_extract_answer_prefers_the_last_answer_marker():
    assert extract_answer("Answer: 3. Wait. Answer: 5\nmore") == "5"
    assert extract_answer("so 2+3=5 and then 5*2=10") == "10"
    assert extract_answer("lists [1, 2] then [3]") == "[3]"
    assert extract_answer("no answer here") == ""
    assert extract_answer("Answer:") == ""


def test_grade_math():
    assert grade("math", "Tom has 3. Answer: 1,200", "1200")
    assert grade("math", "Answer: 3/4", "0.75")
    assert not grade("math", "Answer: 3/5", "0.75")
    assert not grade("math", "Answer: many", "3")
    assert not grade("math", "", "3")


def test_grade_list():
    assert normalise_list("[3,1 , 2]") == (Fraction(3), Fraction(1), Fraction(2))
    assert normalise_list("[]") == ()
    assert normalise_list("[1, x]") is None
    assert grade("list", "Sort: [1, 2]. Answer: [1,2]", "[1, 2]")
    assert not grade("list", "Answer: [2, 1]", "[1, 2]")
    assert not grade("list", "Answer: [1, 2, 3]", "[1, 2]")
    assert grade("list", "Sum: 7. Answer: 7", "7")
    assert not grade("list", "Answer: [7]", "7")


def test_unknown_grader():
    with pytest.raises(KeyError, match="known"):
        grade("nope", "1", "1")
