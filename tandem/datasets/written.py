"""Written (column) arithmetic: the worked steps the lab domains' solutions spell out.

A sum or a difference is written column by column from the units, each column's digits, carry
or borrow and result, then the value: ``78 + 42: 8 + 2 = 10, 7 + 4 + 1 = 12, so 120.`` Each step
is a one-digit fact, so a small model learns sums it could not do in one go, and a worked
solution is several times as long as the facts it needs, as a chain of thought is.
"""

from __future__ import annotations


def _digits(value: int, width: int) -> list[int]:
    """The digits of ``value`` from the units up, padded with zeros to ``width``."""
    return [int(digit) for digit in str(value).zfill(width)[::-1]]


def column_add(a: int, b: int) -> str:
    """``a + b`` worked column by column (``a, b >= 0``)."""
    width = max(len(str(a)), len(str(b)))
    steps = []
    carry = 0
    for x, y in zip(_digits(a, width), _digits(b, width), strict=True):
        total = x + y + carry
        terms = f"{x} + {y}" + (" + 1" if carry else "")
        steps.append(f"{terms} = {total}")
        carry = total // 10
    return f"{a} + {b}: {', '.join(steps)}, so {a + b}."


def column_subtract(a: int, b: int) -> str:
    """``a - b`` worked column by column (``a >= b >= 0``): a column that borrows shows its
    digit plus ten, the next one its digit less the borrowed one."""
    if a < b:
        raise ValueError(f"{a} - {b} is negative")
    width = len(str(a))
    steps = []
    borrow = 0
    for x, y in zip(_digits(a, width), _digits(b, width), strict=True):
        top = x - borrow
        borrow = int(top < y)
        top += 10 * borrow
        steps.append(f"{top} - {y} = {top - y}")
    return f"{a} - {b}: {', '.join(steps)}, so {a - b}."
