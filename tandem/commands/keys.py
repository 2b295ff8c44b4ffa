"""``tandem keys``: issue and revoke tenants' API keys."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(help="API keys (shown once, stored hashed).", no_args_is_help=True)
console = Console()


@app.command()
def create(
    tenant: str = typer.Argument(..., help="Tenant id or name."),
    name: str = typer.Option("", help="A label for the key."),
) -> None:
    """Issue a key and print it once; only its hash and prefix are kept."""
    from shared.db.session import unit_of_work
    from shared.errors import TandemError
    from shared.tenants import create_key, get_tenant

    try:
        with unit_of_work() as session:
            issued = create_key(session, get_tenant(session, tenant), name)
            key_id, secret = issued.key.id, issued.secret
    except TandemError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from exc
    console.print(f"key id={key_id} (store it now; it is not shown again):")
    typer.echo(secret)


@app.command()
def revoke(key: str = typer.Argument(..., help="Key id or visible prefix (tdm_xxxxxxxx).")) -> None:
    """Revoke a key; requests with it fail with 401 from now on."""
    from shared.db.session import unit_of_work
    from shared.errors import TandemError
    from shared.tenants import revoke_key

    try:
        with unit_of_work() as session:
            revoked = revoke_key(session, key)
            prefix = revoked.prefix
    except TandemError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from exc
    console.print(f"revoked {prefix}")
