"""``tandem ledger verify``: the budget invariants, non-zero exit when one is broken."""

from __future__ import annotations

import typer

app = typer.Typer(help="The budget ledger.", no_args_is_help=True)


@app.command()
def verify() -> None:
    """Check spent = Σ settled, reserved = Σ open holds and spent ≤ cap for every budget."""
    from shared.budgets import verify_ledger
    from shared.db.session import unit_of_work

    with unit_of_work() as session:
        problems = verify_ledger(session)
    for problem in problems:
        typer.echo(f"{problem.subject}: {problem.message}")
    if problems:
        typer.echo(f"{len(problems)} ledger invariant(s) broken")
        raise typer.Exit(1)
    typer.echo("ledger ok")
