"""``tandem jobs submit|get|watch|cancel``: the job API from the command line, through
:mod:`tandem.client` (``TANDEM_URL`` and ``TANDEM_API_KEY`` name the API and the key)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from tandem.client import Client, Event
    from tandem.client.calls import SubmitOptions

app = typer.Typer(help="Jobs through the API (TANDEM_URL, TANDEM_API_KEY).", no_args_is_help=True)

Url = Annotated[str | None, typer.Option("--url", envvar="TANDEM_URL", help="The API's URL.")]
Key = Annotated[
    str | None, typer.Option("--key", envvar="TANDEM_API_KEY", help="The tenant's API key.")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@contextmanager
def client(url: str | None, key: str | None) -> Iterator[Client]:
    """A client whose errors end the command with the API's code and message (exit 1)."""
    from tandem.client import APIError, Client, TandemClientError

    try:
        with Client(url, key) as api:
            yield api
    except APIError as error:
        typer.echo(f"error: {error.code}: {error.message}", err=True)
        raise typer.Exit(1) from error
    except TandemClientError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from error


def _print(model: Any, as_json: bool, summary: str) -> None:
    typer.echo(model.model_dump_json(indent=2) if as_json else summary)


def describe(event: Event) -> str:
    if event.done:
        return f"done  {event.status}"
    level = "" if event.level is None else f" level {event.level}"
    data = json.dumps(event.data, separators=(",", ":")) if event.data else ""
    return f"{event.id}  {event.kind}{level}  {event.status or ''}  {data}".rstrip()


@app.command()
def submit(
    question: Annotated[str, typer.Argument(help="The question.")],
    domain: Annotated[str, typer.Option(help="math, code, general ...")] = "general",
    policy: Annotated[str | None, typer.Option(help="tandem, llm_only, slm_only ...")] = None,
    max_cost: Annotated[str | None, typer.Option(help="Most the job may cost (USD).")] = None,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Retries with this key return the same job.")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait and print the answer.")] = False,
    live: Annotated[
        bool, typer.Option("--live", help="Wait, printing the executor's text as it is generated.")
    ] = False,
    url: Url = None,
    key: Key = None,
    as_json: AsJson = False,
) -> None:
    """Submit a job; print its id (or, with --wait, its answer once it is over)."""
    options: SubmitOptions = {}
    if policy is not None:
        options["policy"] = policy
    if max_cost is not None:
        options["max_cost"] = Decimal(max_cost)
    if live:
        options["stream_answer"] = True
    from shared.money import plain
    from tandem.client.calls import ANSWER_DELTA

    with client(url, key) as api:
        accepted = api.submit(question, domain, idempotency_key=idempotency_key, **options)
        if not (wait or live):
            summary = f"{accepted.id}  {accepted.status.value}  reserved {plain(accepted.reserved)}"
            _print(accepted, as_json, summary)
            return
        if live and not as_json:
            for event in api.events(accepted.id):
                if event.kind == ANSWER_DELTA:
                    typer.echo(event.data.get("text", ""), nl=False)
            typer.echo()
        job = api.wait(accepted.id)
    summary = f"{job.id}  {job.status.value}  cost {plain(job.cost)}\n{job.answer or ''}"
    _print(job, as_json, summary)
    if job.status.value != "succeeded":
        raise typer.Exit(1)


@app.command()
def get(
    job_id: Annotated[str, typer.Argument(help="The job's id.")],
    url: Url = None,
    key: Key = None,
    as_json: AsJson = False,
) -> None:
    """A job's status, answer and cost."""
    from shared.money import plain

    with client(url, key) as api:
        job = api.get(job_id)
    level = job.truncation.level
    summary = (
        f"{job.id}  {job.status.value}  policy {job.policy.value}  domain {job.domain.value}\n"
        f"level {level}  reason {job.truncation.reason}  cost {plain(job.cost)}\n"
        f"answer: {job.answer}"
    )
    _print(job, as_json, summary)


@app.command()
def watch(
    job_id: Annotated[str, typer.Argument(help="The job's id.")],
    url: Url = None,
    key: Key = None,
) -> None:
    """Print the job's events as they happen, then its answer; a job submitted with
    ``stream_answer`` (``submit --live``) shows the executor's text as it is generated."""
    from tandem.client.calls import ANSWER_DELTA

    with client(url, key) as api:
        inline = False  # inside a run of the executor's text
        for event in api.events(job_id):
            if event.kind == ANSWER_DELTA:
                typer.echo(event.data.get("text", ""), nl=False)
                inline = True
                continue
            if inline:
                typer.echo()
                inline = False
            typer.echo(describe(event))
        job = api.get(job_id)
    typer.echo(f"answer: {job.answer}")
    if job.status.value != "succeeded":
        raise typer.Exit(1)


@app.command()
def cancel(
    job_id: Annotated[str, typer.Argument(help="The job's id.")],
    url: Url = None,
    key: Key = None,
) -> None:
    """Stop the job at its next step boundary (a job not started yet at once)."""
    with client(url, key) as api:
        cancelled = api.cancel(job_id)
    typer.echo(f"{cancelled.id}  {cancelled.status.value}  cancel requested")
