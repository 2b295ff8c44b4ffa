"""``tandem stack up|down|status``."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from tandem.stack.health import PartHealth
from tandem.stack.settings import StackSettings
from tandem.stack.stack import Stack

app = typer.Typer(
    help="The local stack: Postgres, Redis, engines, workers, API.", no_args_is_help=True
)
console = Console()


def _print(parts: list[PartHealth], as_json: bool) -> None:
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "healthy": all(p.healthy for p in parts),
                    "parts": [
                        {"name": p.name, "healthy": p.healthy, "detail": p.detail} for p in parts
                    ],
                },
                indent=2,
            )
        )
        return
    table = Table("part", "health", "detail")
    for part in parts:
        table.add_row(
            part.name, "[green]healthy[/]" if part.healthy else "[red]DOWN[/]", part.detail
        )
    console.print(table)


@app.command()
def up(
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON."),
    demo: bool = typer.Option(False, help="Then push a demo job through and show its audit."),
    demo_timeout: float = typer.Option(900.0, help="Seconds to wait for the demo job."),
) -> None:
    """Start Postgres, Redis, migrations, engines, workers and the API; wait until healthy."""
    stack = Stack(StackSettings())
    parts = stack.up(report=lambda line: console.print(line) if not as_json else None)
    _print(parts, as_json)
    if not all(p.healthy for p in parts):
        console.print(f"[red]not every part is healthy; logs are in {stack.infra.logs}[/]")
        raise typer.Exit(1)
    if as_json:
        return
    for name, url in stack.urls().items():
        console.print(f"{name:<26} {url}")
    if demo:
        _demo(stack, demo_timeout)


def _demo(stack: Stack, timeout_s: float) -> None:
    from shared.jobs.audit import score_line
    from shared.settings import get_common_settings
    from tandem.stack.demo import demo_question, run_demo, saving_lines

    question = demo_question(stack.settings.engines)
    console.print(f"\n[bold]demo job[/]: {question}")
    result = run_demo(stack.api_url, get_common_settings().admin_api_key, timeout_s, question)
    job = result.job
    truncation = job.get("truncation") or {}
    console.print(f"job          {result.url}  ({job['status']})")
    console.print(f"answer       {job.get('answer')}")
    console.print(
        f"truncation   level {truncation.get('level')}, "
        f"{truncation.get('tokens')} coordinator tokens, reason {truncation.get('reason')}"
    )
    for entry in result.audit.get("scores") or []:
        console.print(f"             {score_line(entry)}")
    console.print(f"cost         ${job.get('cost')}")
    for i, line in enumerate(saving_lines(job, result.baseline)):
        console.print(f"{'saving' if i == 0 else '':<13}{line}")
    console.print(f"audit trail  tandem audit job {job['id']}")
    console.print(f"dashboard    {stack.api_url}/dashboard/jobs/{job['id']}")
    console.print(f"             sign in with the demo tenant's key {result.key}")
    if job["status"] != "succeeded":
        raise typer.Exit(1)


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Show each part of the local stack, healthy or not (exit 1 when any is down)."""
    parts = Stack(StackSettings()).status()
    _print(parts, as_json)
    if not all(p.healthy for p in parts):
        raise typer.Exit(1)


@app.command()
def env() -> None:
    """Print what the stack tells its services (engines, models, classifier, levels) as shell
    exports, so other commands reach the same engines: ``eval "$(tandem stack env)"``."""
    import shlex

    for name, value in sorted(Stack(StackSettings()).environment().items()):
        typer.echo(f"export {name}={shlex.quote(value)}")


@app.command()
def down() -> None:
    """Stop what ``up`` started (by pid), and nothing else."""
    Stack(StackSettings()).down(report=console.print)
