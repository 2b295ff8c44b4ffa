"""``tandem keys``: issue, limit, list and revoke tenants' API keys (same code as the admin API)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NoReturn

import typer
from rich.console import Console

from shared.db.models import BudgetPeriod

app = typer.Typer(help="API keys (shown once, stored hashed).", no_args_is_help=True)
console = Console()

CAP_HELP = "The key's own budget cap per period (USD), at most its tenant's."
PERIOD_HELP = "The period the key's cap is per (default: its tenant's)."
EXPIRES_HELP = "When the key stops working: ISO 8601, UTC unless an offset is given."
RPM_HELP = "The key's own requests per minute."


def _fail(message: str) -> NoReturn:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(2)


def _instant(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        _fail(f"--expires {raw!r} is not an ISO 8601 date or datetime")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@app.command()
def create(
    tenant: str = typer.Argument(..., help="Tenant id or name."),
    name: str = typer.Option("", help="A label for the key."),
    cap: Decimal | None = typer.Option(None, help=CAP_HELP),
    period: BudgetPeriod | None = typer.Option(None, help=PERIOD_HELP),
    expires: str | None = typer.Option(None, help=EXPIRES_HELP),
    rpm: int | None = typer.Option(None, help=RPM_HELP),
) -> None:
    """Issue a key and print it once; only its hash and prefix are kept."""
    from shared.db.session import unit_of_work
    from shared.errors import TandemError
    from shared.tenants import create_key, get_tenant

    limits = {
        "budget_cap": cap,
        "budget_period": period,
        "expires_at": _instant(expires),
        "rate_limit_rpm": rpm,
    }
    try:
        with unit_of_work() as session:
            issued = create_key(session, get_tenant(session, tenant), name, **limits)
            key_id, secret = issued.key.id, issued.secret
    except TandemError as exc:
        _fail(exc.message)
    console.print(f"key id={key_id} (store it now; it is not shown again):")
    typer.echo(secret)


@app.command()
def update(
    key: str = typer.Argument(..., help="Key id or visible prefix (tdm_xxxxxxxx)."),
    cap: Decimal | None = typer.Option(None, help=CAP_HELP),
    period: BudgetPeriod | None = typer.Option(None, help=PERIOD_HELP),
    expires: str | None = typer.Option(None, help=EXPIRES_HELP),
    rpm: int | None = typer.Option(None, help=RPM_HELP),
    clear: list[str] = typer.Option(
        [], help="Remove a limit: cap, period, expires or rpm (repeatable)."
    ),
) -> None:
    """Change a key's limits; a new cap applies to its current period too. A running API
    applies the change within its key cache's interval."""
    from shared.db.session import unit_of_work
    from shared.errors import TandemError
    from shared.tenants import update_key

    names = {"cap": "budget_cap", "period": "budget_period", "expires": "expires_at"}
    names["rpm"] = "rate_limit_rpm"
    changes: dict[str, Any] = {
        field: value
        for field, value in (
            ("budget_cap", cap),
            ("budget_period", period),
            ("expires_at", _instant(expires)),
            ("rate_limit_rpm", rpm),
        )
        if value is not None
    }
    for option in clear:
        if option not in names:
            _fail(f"--clear {option!r}: use one of {', '.join(names)}")
        changes[names[option]] = None
    if not changes:
        _fail("nothing to change: pass --cap, --period, --expires, --rpm or --clear")
    try:
        with unit_of_work() as session:
            prefix = update_key(session, key, changes).prefix
    except TandemError as exc:
        _fail(exc.message)
    console.print(f"updated {prefix}")


@app.command("list")
def list_(tenant: str = typer.Argument(..., help="Tenant id or name.")) -> None:
    """The tenant's keys with their limits and their spend in their current period
    (tab-separated, for scripts)."""
    from shared.budgets.keys import key_spend
    from shared.db.session import unit_of_work
    from shared.errors import TandemError
    from shared.money import plain
    from shared.tenants import get_tenant, list_keys

    header = ("id", "prefix", "name", "state", "period", "cap", "spent", "reserved", "rpm")
    try:
        with unit_of_work() as session:
            owner = get_tenant(session, tenant)
            keys = list_keys(session, owner)
            spend = key_spend(session, owner, keys)
            now = datetime.now(UTC)
            typer.echo("\t".join((*header, "expires")))
            for key in keys:
                used = spend[key.id]
                state = "revoked" if key.revoked_at else "active"
                if key.expires_at is not None and key.expires_at <= now:
                    state = "expired"
                row = (
                    str(key.id),
                    key.prefix,
                    key.name or "-",
                    state,
                    used.period,
                    "-" if used.cap is None else plain(used.cap),
                    plain(used.spent),
                    plain(used.reserved),
                    str(key.rate_limit_rpm or "-"),
                    key.expires_at.isoformat() if key.expires_at else "-",
                )
                typer.echo("\t".join(row))
    except TandemError as exc:
        _fail(exc.message)


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
        _fail(exc.message)
    console.print(f"revoked {prefix}")
