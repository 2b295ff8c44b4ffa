"""Entry point of the ``tandem`` console script.

Every process of the system starts through here (``tandem worker coordinator``, ``tandem api
serve``, ``tandem engine serve`` ...), so the local stack, CI and the container images run the
same entry points. Heavy imports stay inside the commands: ``tandem --help`` loads no model code.
"""

from __future__ import annotations

import typer

from tandem.commands import (
    audit,
    classifier,
    config,
    db,
    engine,
    health,
    jobs,
    keys,
    lab,
    ledger,
    prices,
    stack,
    tenants,
    workers,
)

app = typer.Typer(
    name="tandem",
    help="Tandem serve: a large coordinator writes insights, a small executor answers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(stack.app, name="stack")
app.add_typer(db.app, name="db")
app.add_typer(engine.app, name="engine")
app.add_typer(lab.app, name="lab")
app.add_typer(classifier.app, name="classifier")
app.add_typer(config.app, name="config")
app.add_typer(workers.api_app, name="api")
app.add_typer(tenants.app, name="tenants")
app.add_typer(keys.app, name="keys")
app.add_typer(jobs.app, name="jobs")
app.add_typer(ledger.app, name="ledger")
app.add_typer(prices.app, name="prices")
app.add_typer(audit.app, name="audit")
app.command("worker")(workers.worker)
app.command("beat")(workers.beat)
app.command("worker-health")(health.worker_health)


def main() -> None:
    app()
