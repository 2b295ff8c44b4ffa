"""Operator routes: tenants, their keys and budgets, the ledger check."""
