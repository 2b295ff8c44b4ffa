"""Money as the API writes it: a plain decimal string, never exponent form.

Amounts come from ``Numeric`` columns at scale 12, and ``str(Decimal)`` writes small ones as
``1.00000E-7`` or ``0E-12``; JSON clients and people read ``0.0000001`` and ``0``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import PlainSerializer


def plain(amount: Decimal | int | None) -> str:
    """``amount`` without exponent or trailing zeros (None is no money: ``0``)."""
    value = Decimal(amount or 0).normalize()
    return format(value, "f")


# A response field holding money: validated as a Decimal, written as :func:`plain`.
PlainDecimal = Annotated[Decimal, PlainSerializer(plain, return_type=str, when_used="json")]
