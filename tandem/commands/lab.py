"""``tandem lab data|train|eval``: the project's own coordinator/executor pair.

Retraining is reproducible: ``tandem lab data`` writes the same splits and tokenizer for the same
seed, ``tandem lab train --role R`` trains with the fixed plan in ``tandem.lab.configs``, and
``tandem lab eval`` measures both on the test split and records the accuracy in the manifests.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from tandem.lab.configs import (
    DATA_DIR,
    DOMAINS,
    EVAL_BUDGETS,
    MODELS_DIR,
    PLANS,
    SEED,
    TEST_QUESTIONS,
    Role,
    plan_for,
)

app = typer.Typer(help="The lab model pair: generate data, train, evaluate.", no_args_is_help=True)

DataDir = typer.Option(DATA_DIR, "--data-dir", help="Where generated splits and the tokenizer go.")
ModelsDir = typer.Option(MODELS_DIR, "--models-dir", help="Holds coordinator/ and executor/.")


@app.command()
def data(
    data_dir: Path = DataDir,
    train_questions: int = typer.Option(
        max(plan.questions for plan in PLANS.values()), help="Train questions per domain."
    ),
    seed: int = typer.Option(SEED, help="Generator seed."),
) -> None:
    """Generate every split of every domain and build the shared tokenizer."""
    summary = data_write(data_dir, train_questions, seed)
    typer.echo(json.dumps(summary, indent=2))


def data_write(data_dir: Path, train_questions: int, seed: int) -> dict[str, object]:
    from tandem.lab.corpus import write_data

    return write_data(data_dir, train_questions, seed)


@app.command()
def train(
    role: Role = typer.Option(..., help="Which model to train."),
    data_dir: Path = DataDir,
    models_dir: Path = ModelsDir,
    threads: int = typer.Option(1, help="Torch CPU threads (the machine is shared: keep 1)."),
    steps: int | None = typer.Option(None, help="Override the plan's steps (smoke runs)."),
    questions: int | None = typer.Option(None, help="Override train questions per domain."),
    init_from: Path | None = typer.Option(
        None, help="Continue from this saved model of the same role (a further stage)."
    ),
) -> None:
    """Train one role with its fixed plan; writes weights, loss chart and manifest."""
    from tandem.lab.pipeline import train_role

    if not (data_dir / "data.json").exists():
        typer.echo(f"no data in {data_dir}; generating it first")
        data_write(data_dir, max(plan.questions for plan in PLANS.values()), SEED)
    overrides = {k: v for k, v in {"steps": steps, "questions": questions}.items() if v}
    manifest = train_role(
        role,
        data_dir,
        models_dir / role.value,
        plan_for(role, **overrides),
        threads=threads,
        init_from=init_from,
    )
    typer.echo(json.dumps({k: manifest[k] for k in ("role", "parameters", "training")}, indent=2))


@app.command("eval")
def evaluate(
    data_dir: Path = DataDir,
    models_dir: Path = ModelsDir,
    questions: int = typer.Option(TEST_QUESTIONS, help="Test questions per domain."),
    threads: int = typer.Option(1, help="Torch CPU threads."),
    budgets: str = typer.Option(
        ",".join(map(str, EVAL_BUDGETS)), help="Insight-token budgets, comma-separated."
    ),
    record: bool = typer.Option(True, help="Write eval.json/eval.md and manifest accuracy."),
) -> None:
    """Measure coordinator alone, executor alone and executor + coordinator insights."""
    import torch

    from shared.datasets import Split
    from shared.prompts.lab import PROMPT_VERSION
    from tandem.lab.corpus import load_split
    from tandem.lab.evaluate import evaluate_domain, markdown
    from tandem.lab.inference import LabModel
    from tandem.lab.pipeline import read_manifest, write_manifest

    torch.set_num_threads(threads)
    coordinator = LabModel.load(models_dir / Role.COORDINATOR.value)
    executor = LabModel.load(models_dir / Role.EXECUTOR.value)
    budget_list = [int(b) for b in budgets.split(",") if b.strip()]
    started = time.perf_counter()
    results: dict[str, object] = {
        "prompt_version": PROMPT_VERSION,
        "parameters": {"coordinator": coordinator.parameters, "executor": executor.parameters},
        "budgets": budget_list,
        "domains": {},
    }
    domains: dict[str, dict[str, object]] = {}
    for domain in DOMAINS:
        records = load_split(data_dir, domain, Split.TEST, limit=questions)
        typer.echo(f"{domain}: {len(records)} test questions", err=True)
        domains[domain] = evaluate_domain(coordinator, executor, records, budget_list)
    results["domains"] = domains
    results["seconds"] = round(time.perf_counter() - started, 1)
    text = markdown(results)
    typer.echo(text)
    if not record:
        return
    (models_dir / "eval.json").write_text(json.dumps(results, indent=2) + "\n")
    (models_dir / "eval.md").write_text(text)
    for role in Role:
        manifest = read_manifest(models_dir / role.value)
        manifest["accuracy"] = {
            domain: {
                row["setting"]: row["accuracy"]
                for row in result["rows"]  # type: ignore[attr-defined]
                if (role is Role.COORDINATOR) == row["setting"].startswith("coordinator")
            }
            for domain, result in domains.items()
        }
        manifest["accuracy"]["test_questions_per_domain"] = questions
        write_manifest(models_dir / role.value, manifest)
