"""Answer extraction and exact graders.

Models write a worked solution ending in ``Answer: <value>``. Graders pull that value out and
compare it with the reference after normalising, so ``1,200``, ``$1200`` and ``1200.0`` are the
same number and ``3/4`` equals ``0.75``. Code grading (running tests in a sandbox) lives with the
classifier pipeline; these graders only need the text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from fractions import Fraction

ANSWER_PREFIX = "Answer:"

_LATEX_FRAC = re.compile(r"\\d?frac\{\s*(-?\d+)\s*\}\{\s*(-?\d+)\s*\}")
_MIXED = re.compile(r"^(-?\d+)\s+(\d+)\s*/\s*(\d+)$")
_FRACTION = re.compile(r"^(-?\d+(?:\.\d+)?)\s*/\s*(-?\d+(?:\.\d+)?)$")
_DECIMAL = re.compile(r"^-?(?:\d+(?:\.\d*)?|\.\d+)(?:e-?\d+)?$", re.IGNORECASE)
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_LAST_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:\s*/\s*\d+)?")
_LIST = re.compile(r"\[[^\[\]]*\]")


def extract_answer(text: str) -> str:
    """The final answer a model wrote: the text after the last ``Answer:``, up to the line end.

    Without that marker, the last list or number in the text is taken, so a model that drifts
    from the format is still graded on what it said last.
    """
    index = text.rfind(ANSWER_PREFIX)
    if index >= 0:
        lines = text[index + len(ANSWER_PREFIX) :].strip().splitlines()
        return lines[0].strip() if lines else ""
    candidates = [(m.end(), m.group()) for m in _LIST.finditer(text)]
    candidates += [(m.end(), m.group()) for m in _LAST_NUMBER.finditer(text)]
    return max(candidates)[1].strip() if candidates else ""


def normalise_number(text: str) -> Fraction | None:
    """An exact value for a written number, or None when the text is not one number."""
    value = text.strip()
    value = _LATEX_FRAC.sub(r"\1/\2", value)
    value = value.replace("\\$", "").replace("$", "").replace("\\,", "")
    value = value.strip().rstrip(".").strip()
    value = _THOUSANDS.sub("", value)
    percent = value.endswith("%")
    if percent:
        value = value[:-1].strip()
    result: Fraction | None = None
    mixed = _MIXED.match(value)
    if mixed:
        whole, num, den = (int(part) for part in mixed.groups())
        if den == 0:
            return None
        sign = -1 if whole < 0 else 1
        result = Fraction(whole) + sign * Fraction(num, den)
    elif (fraction := _FRACTION.match(value)) is not None:
        num_text, den_text = fraction.groups()
        denominator = Fraction(den_text)
        if denominator == 0:
            return None
        result = Fraction(num_text) / denominator
    elif _DECIMAL.match(value):
        result = Fraction(value)
    if result is not None and percent:
        result /= 100
    return result


def normalise_list(text: str) -> tuple[Fraction, ...] | None:
    """A list of numbers such as ``[3, 1, 2]``; None when the text is not such a list."""
    value = text.strip().rstrip(".").strip()
    if not (value.startswith("[") and value.endswith("]")):
        return None
    inner = value[1:-1].strip()
    if not inner:
        return ()
    items = []
    for part in inner.split(","):
        number = normalise_number(part)
        if number is None:
            return None
        items.append(number)
    return tuple(items)


def same_number(answer: str, reference: str) -> bool:
    """True when an extracted answer is the same number as ``reference``."""
    expected = normalise_number(reference)
    got = normalise_number(answer)
    return expected is not None and got is not None and expected == got


def same_list(answer: str, reference: str) -> bool:
    """True when an extracted answer equals the reference: a list element by element, or a
    number."""
    expected_list = normalise_list(reference)
    if expected_list is not None:
        return normalise_list(answer) == expected_list
    return same_number(answer, reference)


def grade_math(output: str, reference: str) -> bool:
    """True when the answer in ``output`` is the same number as ``reference``."""
    return same_number(extract_answer(output), reference)


def grade_list(output: str, reference: str) -> bool:
    """True when the answer equals the reference: a list element by element, or a number."""
    return same_list(extract_answer(output), reference)


GRADERS: dict[str, Callable[[str, str], bool]] = {
    "math": grade_math,
    "list": grade_list,
}


def grade(grader: str, output: str, reference: str) -> bool:
    try:
        function = GRADERS[grader]
    except KeyError as error:
        raise KeyError(f"unknown grader {grader!r}; known: {sorted(GRADERS)}") from error
    return function(output, reference)


# The same comparisons for an answer some other code already extracted, such as the serving
# path's :func:`shared.answers.extract_answer` (``\boxed{}`` or the last number): the
# classifier's labels must grade exactly the answer a job would return.
ANSWER_GRADERS: dict[str, Callable[[str, str], bool]] = {
    "math": same_number,
    "list": same_list,
}


def grade_answer(grader: str, answer: str | None, reference: str) -> bool:
    """True when an already extracted ``answer`` matches ``reference`` (None: no answer)."""
    try:
        function = ANSWER_GRADERS[grader]
    except KeyError as error:
        raise KeyError(f"unknown grader {grader!r}; known: {sorted(ANSWER_GRADERS)}") from error
    return answer is not None and function(answer, reference)
