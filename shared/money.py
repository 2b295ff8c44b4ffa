"""Money's scale, and money as the API reads and writes it.

Amounts are stored in ``Numeric`` columns at scale 12 (:data:`SCALE`). The API writes them as
plain decimal strings, never exponent form: ``str(Decimal)`` writes small ones as ``1.00000E-7``
or ``0E-12``; JSON clients and people read ``0.0000001`` and ``0``. It reads them with at most
12 decimal places: more would be rounded away silently when stored.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import Field, PlainSerializer

SCALE = 12  # decimal places of every stored amount (shared.db.base.Money)
QUANTUM = Decimal(1).scaleb(-SCALE)


def plain(amount: Decimal | int | None) -> str:
    """``amount`` without exponent or trailing zeros (None is no money: ``0``)."""
    value = Decimal(amount or 0).normalize()
    return format(value, "f")


# A response field holding money: validated as a Decimal, written as :func:`plain`.
PlainDecimal = Annotated[Decimal, PlainSerializer(plain, return_type=str, when_used="json")]

# A request field holding money (or a share of it): more places than are stored is a 422 naming
# the field, not an amount silently rounded.
Amount = Annotated[Decimal, Field(decimal_places=SCALE)]
