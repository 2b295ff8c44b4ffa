"""Budgets: reserve a job's worst case at admission, settle the actual cost at the end (§4).

The pipeline's accounting service calls :func:`settle`; the API calls :func:`reserve` and
:func:`record_reserve` inside the submission's unit of work; ``tandem ledger verify`` calls
:func:`verify_ledger`.
"""

from shared.budgets.errors import BudgetExceeded
from shared.budgets.periods import period_key
from shared.budgets.service import (
    LedgerProblem,
    Reservation,
    Settlement,
    current_budget,
    record_reserve,
    reserve,
    settle,
    verify_ledger,
)

__all__ = [
    "BudgetExceeded",
    "LedgerProblem",
    "Reservation",
    "Settlement",
    "current_budget",
    "period_key",
    "record_reserve",
    "reserve",
    "settle",
    "verify_ledger",
]
