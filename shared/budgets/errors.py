"""Budget refusals, rendered by the API as 402 with the figures the caller needs to act."""

from __future__ import annotations

from decimal import Decimal

from shared.errors import TandemError
from shared.money import plain


class BudgetExceeded(TandemError):
    """The job's cost does not fit what is left (tenant cap or the per-request maximum)."""

    code = "budget_exceeded"
    http_status = 402

    def __init__(
        self,
        message: str,
        *,
        cap: Decimal,
        spent: Decimal,
        reserved: Decimal,
        requested: Decimal,
        limit: str = "tenant_cap",
        period: str | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(
            message,
            field=field,
            cap=plain(cap),
            spent=plain(spent),
            reserved=plain(reserved),
            requested=plain(requested),
            limit=limit,
            period=period,
        )
        self.cap = cap
        self.spent = spent
        self.reserved = reserved
        self.requested = requested

    @property
    def remaining(self) -> Decimal:
        return max(self.cap - self.spent - self.reserved, Decimal(0))


class KeyBudgetExhausted(BudgetExceeded):
    """The job fits its tenant's budget but not the budget of the API key submitting it."""

    code = "key_budget_exhausted"
