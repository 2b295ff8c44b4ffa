"""``tandem tenants``: create, list and set the budget of tenants (same code as the admin API)."""

from __future__ import annotations

from decimal import Decimal

import typer
from rich.console import Console

from shared.db.models import BudgetPeriod

app = typer.Typer(help="Tenants and their budgets.", no_args_is_help=True)
console = Console()


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(2)


@app.command()
def create(
    name: str = typer.Argument(..., help="Unique tenant name."),
    cap: Decimal = typer.Option(Decimal(0), help="Budget cap per period (USD)."),
    period: BudgetPeriod = typer.Option(BudgetPeriod.MONTHLY, help="Budget period."),
    soft_alert: Decimal = typer.Option(Decimal("0.8"), help="Alert when spent crosses this."),
    hard_alert: Decimal = typer.Option(Decimal(1), help="Second alert (1: the cap spent)."),
    alert_url: str | None = typer.Option(None, help="Where alerts are POSTed, signed."),
    max_cost_per_request: Decimal | None = typer.Option(None, help="Most one job may cost."),
    rpm: int | None = typer.Option(None, help="Requests per minute."),
    concurrency: int | None = typer.Option(None, help="Most jobs running at once."),
) -> None:
    """Create a tenant; prints its id and webhook secret (shown once)."""
    from shared.db.session import unit_of_work
    from shared.errors import TandemError
    from shared.tenants import create_tenant

    try:
        with unit_of_work() as session:
            tenant = create_tenant(
                session,
                name,
                budget_cap=cap,
                budget_period=period,
                soft_alert_ratio=soft_alert,
                hard_alert_ratio=hard_alert,
                alert_url=alert_url,
                max_cost_per_request=max_cost_per_request,
                rate_limit_rpm=rpm,
                max_concurrent_jobs=concurrency,
            )
            tenant_id, secret = tenant.id, tenant.webhook_secret
    except TandemError as exc:
        _fail(exc.message)
        return
    console.print(f"tenant {name} id={tenant_id}")
    console.print(f"webhook secret (shown once): {secret}")


@app.command("list")
def list_() -> None:
    """List tenants with their current period's budget (tab-separated, for scripts)."""
    from shared.budgets import current_budget
    from shared.db.session import unit_of_work
    from shared.tenants import list_tenants

    header = ("id", "name", "active", "period", "cap", "spent", "reserved", "rpm", "jobs")
    typer.echo("\t".join(header))
    with unit_of_work() as session:
        for tenant in list_tenants(session):
            budget = current_budget(session, tenant)
            row = (
                str(tenant.id),
                tenant.name,
                "yes" if tenant.active else "no",
                budget.period_key,
                str(budget.cap.normalize()),
                str(budget.spent.normalize()),
                str(budget.reserved.normalize()),
                str(tenant.rate_limit_rpm or "-"),
                str(tenant.max_concurrent_jobs or "-"),
            )
            typer.echo("\t".join(row))


@app.command("set-budget")
def set_budget(
    tenant: str = typer.Argument(..., help="Tenant id or name."),
    cap: Decimal | None = typer.Option(None, help="New cap (applies to the current period)."),
    period: BudgetPeriod | None = typer.Option(None, help="New budget period."),
    soft_alert: Decimal | None = typer.Option(None, help="New soft-alert ratio."),
    hard_alert: Decimal | None = typer.Option(None, help="New hard-alert ratio."),
    alert_url: str | None = typer.Option(None, help="New alert URL ('' removes it)."),
    max_cost_per_request: Decimal | None = typer.Option(None, help="Most one job may cost."),
    rpm: int | None = typer.Option(None, help="Requests per minute."),
    concurrency: int | None = typer.Option(None, help="Most jobs running at once."),
    clear: list[str] = typer.Option(
        [],
        "--clear",
        help="Remove a limit: alert_url, max_cost_per_request, rate_limit_rpm or "
        "max_concurrent_jobs (repeatable).",
    ),
) -> None:
    """Change a tenant's budget and limits."""
    from shared.db.session import unit_of_work
    from shared.errors import TandemError
    from shared.tenants import get_tenant, update_tenant

    try:
        with unit_of_work() as session:
            found = get_tenant(session, tenant)
            update_tenant(
                session,
                found,
                budget_cap=cap,
                budget_period=period,
                soft_alert_ratio=soft_alert,
                hard_alert_ratio=hard_alert,
                alert_url=alert_url,
                max_cost_per_request=max_cost_per_request,
                rate_limit_rpm=rpm,
                max_concurrent_jobs=concurrency,
                clear=clear,
            )
            name, new_cap, new_period = found.name, found.budget_cap, found.budget_period
    except TandemError as exc:
        _fail(exc.message)
        return
    console.print(f"tenant {name}: cap {new_cap.normalize()} per {new_period}")
