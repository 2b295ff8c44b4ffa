"""``tandem audit job ID``: where a job stopped, why, what every call cost."""

from __future__ import annotations

import json

import typer

app = typer.Typer(help="Audit trails of jobs.", no_args_is_help=True)


@app.command("job")
def job(
    job_id: str = typer.Argument(..., help="The job's id."),
    as_json: bool = typer.Option(False, "--json", help="Print the audit as JSON."),
) -> None:
    """Print one job's truncation point, termination reason, scores, model calls and cost."""
    from shared.db.session import unit_of_work
    from shared.errors import NotFoundError
    from shared.jobs.audit import job_audit, score_line

    try:
        with unit_of_work() as session:
            audit = job_audit(session, job_id)
    except (NotFoundError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from error
    if as_json:
        typer.echo(json.dumps(audit, indent=2, default=str))
        return
    typer.echo(
        f"job {audit['job_id']}  {audit['status']}  policy {audit['policy']}  "
        f"domain {audit['domain']}  prompt {audit['prompt_version']}"
    )
    if audit["shadow_of"]:
        typer.echo(f"shadow run of job {audit['shadow_of']}, on the operator's account")
    if audit["shadow"]:
        shadow = audit["shadow"]
        typer.echo(
            f"shadow run {shadow['job_id']}  {shadow['status']}  cost {shadow['cost']} "
            "(llm_only on the operator's account)"
        )
    typer.echo(
        f"levels {audit['levels']}  thresholds {audit['thresholds']}  "
        f"classifier {audit['classifier_version']}"
    )
    typer.echo(
        f"stopped at level {audit['truncation_level']} = "
        f"{audit['truncation_tokens']} coordinator tokens "
        f"({audit['insight_tokens_written']} written), reason: "
        f"{audit['termination_reason']}"
    )
    for entry in audit["scores"]:
        typer.echo(f"  {score_line(entry)}")
    typer.echo(f"answer: {audit['answer']}")
    if audit["error"]:
        typer.echo(f"error: {audit['error']['code']}: {audit['error']['message']}")
    typer.echo("calls:")
    for call in audit["calls"]:
        typer.echo(
            f"  {call['step']:<12} {call['role']:<11} {call['model']:<20} "
            f"prompt {call['prompt_tokens']:>5} gen {call['generated_tokens']:>5} "
            f"{call['latency_ms']:>9.1f} ms  flops {call['flops']}  cost {call['cost']}"
        )
    typer.echo(f"reserved {audit['reserved']}  charged {audit['cost']}")
