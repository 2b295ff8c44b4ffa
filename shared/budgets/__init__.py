"""Budgets: reserve a job's worst case at admission, settle the actual cost at the end.

The pipeline's accounting service calls :func:`settle`; ``tandem ledger verify`` calls
:func:`verify_ledger`. The API admits a job with the same conditional reserve folded into one
statement with the job's insert (:func:`shared.jobs.repository.admit`); :func:`reserve` and
:func:`record_reserve` are that rule as separate steps, for callers that build a job by hand.
The rules: docs/architecture.md, 'Money path'.
"""

from shared.budgets.errors import BudgetExceeded, KeyBudgetExhausted
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
    "KeyBudgetExhausted",
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
