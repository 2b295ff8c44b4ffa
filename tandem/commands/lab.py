"""``tandem lab data|train|train-pair|eval``: the project's own coordinator/executor pairs.

Retraining is reproducible: ``tandem lab data`` writes the same splits and tokenizer for the same
seed, ``tandem lab train --role R`` trains with the fixed plan in ``tandem.lab.configs``, and
``tandem lab eval`` measures both on the test split and records the accuracy in the manifests.
``--pair`` picks the pair (``v1``, the served one, by default; ``v2`` the fair analogue of the
paper; ``v3`` v2 with an executor that also learns what sufficient insights look like, beside
v2's coordinator, so ``train-pair`` trains its executor only). ``tandem lab train-pair``
trains both roles one after the other with checkpoints, for a run in the background: run it
again with the same arguments and it resumes where it stopped.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from types import FrameType

import typer

from tandem.lab.configs import PAIRS, SEED, V1, Pair, Role

app = typer.Typer(help="The lab model pairs: generate data, train, evaluate.", no_args_is_help=True)

PairOption = typer.Option(V1.name, "--pair", help=f"Which pair: {', '.join(PAIRS)}.")
DataDir = typer.Option(
    None, "--data-dir", help="Where generated splits and the tokenizer go (default: the pair's)."
)
ModelsDir = typer.Option(
    None, "--models-dir", help="Holds coordinator/ and executor/ (default: the pair's)."
)


def _pair(name: str) -> Pair:
    try:
        return PAIRS[name]
    except KeyError:
        raise typer.BadParameter(f"unknown pair {name!r}; known: {', '.join(PAIRS)}") from None


@app.command()
def data(
    pair_name: str = PairOption,
    data_dir: Path | None = DataDir,
    train_questions: int | None = typer.Option(
        None, help="Train questions per domain (default: the most any plan of the pair uses)."
    ),
    seed: int = typer.Option(SEED, help="Generator seed."),
) -> None:
    """Generate every split of every domain and build the shared tokenizer."""
    pair = _pair(pair_name)
    summary = data_write(pair, data_dir or pair.data_dir, train_questions, seed)
    typer.echo(json.dumps(summary, indent=2))


def data_write(
    pair: Pair, data_dir: Path, train_questions: int | None, seed: int
) -> dict[str, object]:
    from tandem.lab.corpus import write_data

    return write_data(
        data_dir,
        train_questions or pair.train_questions,
        seed,
        pair.vocab_size,
        domains=pair.domains,
        validation_questions=pair.validation_questions,
        test_questions=pair.test_questions,
        train_presets=sorted({plan.difficulty for plan in pair.plans.values()}),
    )


def _ensure_data(pair: Pair, data_dir: Path) -> None:
    if not (data_dir / "data.json").exists():
        typer.echo(f"no data in {data_dir}; generating it first", err=True)
        data_write(pair, data_dir, None, SEED)


@app.command()
def train(
    role: Role = typer.Option(..., help="Which model to train."),
    pair_name: str = PairOption,
    data_dir: Path | None = DataDir,
    models_dir: Path | None = ModelsDir,
    threads: int = typer.Option(1, help="Torch CPU threads (the machine is shared: keep 1)."),
    steps: int | None = typer.Option(None, help="Override the plan's steps (smoke runs)."),
    questions: int | None = typer.Option(None, help="Override train questions per domain."),
    init_from: Path | None = typer.Option(
        None, help="Continue from this saved model of the same role (a further stage)."
    ),
) -> None:
    """Train one role with its fixed plan; writes weights, loss chart and manifest."""
    from tandem.lab.pipeline import train_role

    pair = _pair(pair_name)
    data_dir = data_dir or pair.data_dir
    _ensure_data(pair, data_dir)
    overrides = {k: v for k, v in {"steps": steps, "questions": questions}.items() if v}
    manifest = train_role(
        role,
        data_dir,
        (models_dir or pair.models_dir) / role.value,
        pair.plan_for(role, **overrides),
        threads=threads,
        init_from=init_from,
        pair=pair,
    )
    typer.echo(json.dumps({k: manifest[k] for k in ("role", "parameters", "training")}, indent=2))


def _log(line: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    print(f"{stamp} {line}", flush=True)


@app.command("train-pair")
def train_pair(
    pair_name: str = typer.Option("v2", "--pair", help=f"Which pair: {', '.join(PAIRS)}."),
    data_dir: Path | None = DataDir,
    models_dir: Path | None = ModelsDir,
    threads: int = typer.Option(1, help="Torch CPU threads (the machine is shared: keep 1)."),
    checkpoint_minutes: float = typer.Option(3.0, help="Minutes between checkpoints."),
    until_step: int | None = typer.Option(
        None, help="Stop each unfinished role after this step (training in chunks)."
    ),
) -> None:
    """Train the executor, then the coordinator, resuming each from its checkpoint.

    A role whose model is already saved is skipped; an interrupted one continues from the
    checkpoint in ``<models>/checkpoints/`` with the same weights, optimizer, schedule, batch
    order and loss history, so the result equals one uninterrupted run. SIGTERM or SIGINT
    saves a checkpoint after the current step and exits.
    """
    from tandem.lab.pipeline import MANIFEST, read_manifest, train_role
    from tandem.lab.training import Checkpointer, Interrupted

    pair = _pair(pair_name)
    data_dir = data_dir or pair.data_dir
    models_dir = models_dir or pair.models_dir
    _ensure_data(pair, data_dir)
    current: list[Checkpointer] = []

    def request_stop(signum: int, frame: FrameType | None) -> None:
        _log(f"signal {signum}: stopping after this step")
        for checkpointer in current:
            checkpointer.stop_requested = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for role in (Role.EXECUTOR, Role.COORDINATOR):
            out = models_dir / role.value
            plan = pair.plan_for(role)
            if (out / MANIFEST).exists() and read_manifest(out)["training"]["steps"] == plan.steps:
                _log(f"{role.value}: already trained ({out})")
                continue
            try:
                train_role(
                    role,
                    data_dir,
                    out,
                    plan,
                    threads=threads,
                    progress=False,
                    pair=pair,
                    checkpoint=pair_checkpoint(models_dir, role),
                    checkpoint_seconds=checkpoint_minutes * 60,
                    log=_log,
                    stop_at=until_step,
                    on_checkpointer=current.append,
                )
            except Interrupted as stopped:
                _log(
                    f"{role.value}: checkpoint at step {stopped.step}; "
                    "run the same command to resume"
                )
                return
            _log(f"{role.value}: trained and saved to {out}")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def pair_checkpoint(models_dir: Path, role: Role) -> Path:
    return models_dir / "checkpoints" / f"{role.value}.pt"


@app.command("eval")
def evaluate(
    pair_name: str = PairOption,
    data_dir: Path | None = DataDir,
    models_dir: Path | None = ModelsDir,
    questions: int | None = typer.Option(
        None, help="Test questions per domain (default: the pair's whole test split)."
    ),
    threads: int = typer.Option(1, help="Torch CPU threads."),
    budgets: str | None = typer.Option(
        None, help="Insight-token budgets, comma-separated (default: the pair's)."
    ),
    record: bool = typer.Option(True, help="Write eval.json/eval.md and manifest accuracy."),
) -> None:
    """Measure coordinator alone, executor alone and executor + coordinator insights."""
    import torch

    from shared.prompts.lab import PROMPT_VERSION
    from tandem.datasets import Split
    from tandem.lab.corpus import load_split
    from tandem.lab.evaluate import evaluate_domain, markdown
    from tandem.lab.inference import LabModel
    from tandem.lab.pipeline import read_manifest, write_manifest

    pair = _pair(pair_name)
    data_dir = data_dir or pair.data_dir
    models_dir = models_dir or pair.models_dir
    questions = questions or pair.test_questions
    torch.set_num_threads(threads)
    coordinator = LabModel.load(models_dir / Role.COORDINATOR.value)
    executor = LabModel.load(models_dir / Role.EXECUTOR.value)
    budget_list = (
        [int(b) for b in budgets.split(",") if b.strip()] if budgets else list(pair.eval_budgets)
    )
    started = time.perf_counter()
    results: dict[str, object] = {
        "pair": pair.name,
        "prompt_version": PROMPT_VERSION,
        "parameters": {"coordinator": coordinator.parameters, "executor": executor.parameters},
        "budgets": budget_list,
        "domains": {},
    }
    domains: dict[str, dict[str, object]] = {}
    for domain in pair.domains:
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
