"""Answer extraction: boxed beats the last number, code blocks, general answers."""

from __future__ import annotations

import pytest

from shared.answers import boxed, extract_answer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so 12 + 3 = 15. The answer is \\boxed{15}.", "15"),
        ("first \\boxed{2}, finally \\boxed{\\frac{7}{2}}", "\\frac{7}{2}"),
        ("He has 1,234 apples and then 56 pears, total 1,290", "1290"),
        ("the value is -3.5", "-3.5"),
        ("it is 7 / 2 in the end", "7/2"),
        ("no numbers here", None),
    ],
)
def test_math(text: str, expected: str | None) -> None:
    assert extract_answer(text, "math") == expected


def test_unbalanced_box_falls_back_to_numbers() -> None:
    assert boxed("\\boxed{3") is None
    assert extract_answer("\\boxed{3", "math") == "3"


def test_code_block() -> None:
    text = "Here:\n```python\ndef add(a, b):\n    return a + b\n```\nDone. ```js\nx\n```"
    assert extract_answer(text, "code") == "def add(a, b):\n    return a + b"


def test_unterminated_code_block_runs_to_the_end() -> None:
    assert extract_answer("```\nprint(1)\n", "code") == "print(1)"
    assert extract_answer("no code at all", "code") is None


def test_general() -> None:
    assert extract_answer("Thinking... The answer is: Paris.", "general") == "Paris"
    assert extract_answer("line one\nlast line", "general") == "last line"
    assert extract_answer("so the answer is 42", "general") == "42"
    # The lab pair closes its solutions with "Answer: X" (lists answers are lists).
    assert extract_answer("Start [1, 2]. Reverse: [2, 1]. Answer: [2, 1]", "general") == "[2, 1]"
