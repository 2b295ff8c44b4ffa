"""Answer extraction from the executor's text (math: boxed or final number; code: the block)."""

from __future__ import annotations

import re

from shared.db.models import Domain

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?")
_CODE_BLOCK = re.compile(r"```(?:[\w+-]+)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
# "The answer is X", "answer is: X" and a closing "Answer: X".
_ANSWER_IS = re.compile(r"\banswer(?:\s+is\s*:?|\s*:)\s*(.+)", re.IGNORECASE)


def boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}``, braces balanced."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed{")
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            if depth == 0:
                return text[i:j].strip()
            depth -= 1
    return None


def math_answer(text: str) -> str | None:
    """``\\boxed{}`` if present, else the last number in the text (commas dropped)."""
    inside = boxed(text)
    if inside is not None:
        return inside
    numbers = _NUMBER.findall(text)
    if not numbers:
        return None
    return re.sub(r"\s+", "", numbers[-1]).replace(",", "")


def code_answer(text: str) -> str | None:
    """The first fenced code block (an unterminated one runs to the end of the text)."""
    match = _CODE_BLOCK.search(text)
    if match:
        return match.group(1).strip("\n") or None
    return None


def general_answer(text: str) -> str | None:
    matches = list(_ANSWER_IS.finditer(text))
    if matches:
        return matches[-1].group(1).strip().rstrip(".").strip() or None
    stripped = text.strip()
    return stripped.splitlines()[-1].strip() if stripped else None


def extract_answer(text: str, domain: Domain | str) -> str | None:
    domain = Domain(domain)
    if domain is Domain.MATH:
        return math_answer(text)
    if domain is Domain.CODE:
        return code_answer(text)
    return general_answer(text)
