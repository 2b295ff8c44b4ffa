"""Errors of the price table."""

from __future__ import annotations

from shared.errors import TandemError


class PriceExists(TandemError):
    """The model already has a row from that very time (rows are never replaced)."""

    code = "price_exists"
    http_status = 409
