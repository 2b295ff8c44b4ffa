"""``tandem prices``: list the price table and add a price (same code as the admin API)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import typer
from rich.console import Console

app = typer.Typer(help="Model prices per million tokens, with their history.", no_args_is_help=True)
console = Console(stderr=True)


@app.command("list")
def list_(
    model: str | None = typer.Option(None, help="Only this model's rows."),
) -> None:
    """Every price row, each model's newest first; `*` marks the one in force (tab-separated)."""
    from shared.db.session import unit_of_work
    from shared.money import plain
    from shared.prices import listing

    header = ("id", "model", "prompt", "generated", "cached_prompt", "effective_from", "source")
    typer.echo("\t".join(("now", *header)))
    with unit_of_work() as session:
        for row, in_force in listing(session, model):
            fields = (
                "*" if in_force else "",
                str(row.id),
                row.model,
                plain(row.prompt_per_mtok),
                plain(row.generated_per_mtok),
                plain(row.cached_prompt_per_mtok),
                row.effective_from.isoformat(),
                row.source,
            )
            typer.echo("\t".join(fields))


@app.command("set")
def set_(
    model: str = typer.Argument(..., help="The model id its engine reports."),
    prompt: Decimal = typer.Option(..., help="USD per million prompt tokens."),
    generated: Decimal = typer.Option(..., help="USD per million generated tokens."),
    cached_prompt: Decimal | None = typer.Option(
        None, help="USD per million prompt tokens served from the prefix cache (default: prompt)."
    ),
    effective_from: datetime | None = typer.Option(
        None,
        "--from",
        formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S%z"],
        help="When it takes effect, with a UTC offset (default: now).",
    ),
    new_model: bool = typer.Option(False, help="Price a model no engine is configured with."),
) -> None:
    """Add a price from a time on; API processes charge it to new jobs within
    TANDEM_PRICE_REFRESH_S. Jobs already admitted keep theirs."""
    from shared.db.session import unit_of_work
    from shared.errors import TandemError
    from shared.prices import set_price

    try:
        with unit_of_work() as session:
            row = set_price(
                session,
                model=model,
                prompt_per_mtok=prompt,
                generated_per_mtok=generated,
                cached_prompt_per_mtok=cached_prompt,
                effective_from=effective_from,
                new_model=new_model,
            )
            price_id, since = row.id, row.effective_from
    except TandemError as exc:
        console.print(f"[red]error:[/red] {exc.field or 'price'}: {exc.message}")
        raise typer.Exit(2) from exc
    typer.echo(f"price {price_id} for {model} from {since.isoformat()}")
