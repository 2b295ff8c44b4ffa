"""``tandem classifier collect|train|calibrate|rule|evaluate|activate``: the sufficiency classifier.

One command per step, each reading the previous one's files::

    tandem classifier collect --dataset arithmetic --out .tandem/classifier/arith.jsonl
    tandem classifier train .tandem/classifier/arith.jsonl --out models/classifier/arith.onnx
    tandem classifier calibrate models/classifier/arith.onnx .tandem/classifier/arith.jsonl
    tandem classifier rule models/classifier/arith.onnx .tandem/classifier/arith.jsonl
    tandem classifier evaluate models/classifier/arith.onnx .tandem/classifier/arith.jsonl
    tandem classifier activate models/classifier/arith.onnx

Only ``collect`` calls engines (the configured ones, or ``--*-url``); the others work offline on
the collected file; ``activate`` writes to Postgres. The logic lives in ``tandem.classifier``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path

import typer
from rich.console import Console

from shared.errors import TandemError

app = typer.Typer(
    help="Sufficiency classifier: collect data, train, calibrate, evaluate, activate.",
    no_args_is_help=True,
)
console = Console(soft_wrap=True)  # long paths and tables stay on one line

SPLITS = ("train", "validation", "test")


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(2)


def _levels(text: str | None) -> tuple[int, ...]:
    if text is None:
        from services.api.settings import ApiSettings

        return tuple(ApiSettings().levels)
    try:
        levels = tuple(int(part) for part in text.split(","))
    except ValueError:
        _fail("--levels must be comma-separated integers, such as 0,100,500,1000")
        raise
    if not levels or levels[0] != 0 or any(b <= a for a, b in itertools.pairwise(levels)):
        _fail("--levels must start with 0 and increase strictly")
    return levels


@app.command()
def collect(
    dataset: str = typer.Option(
        "arithmetic",
        help="A generated domain (arithmetic, math, lists), humaneval, or a JSONL file of "
        "questions (id, domain, question, reference, grader[, split]).",
    ),
    split: list[str] = typer.Option(list(SPLITS), help="Splits to collect (repeatable)."),
    count: int | None = typer.Option(
        None, help="Questions per split (generated domains: default 100; files: all)."
    ),
    out: Path | None = typer.Option(
        None, help="Collected JSONL (default .tandem/classifier/<dataset>.jsonl); resumed."
    ),
    levels: str | None = typer.Option(
        None, help="Cumulative insight budgets, e.g. 0,100,500,1000 (default: the API's)."
    ),
    answer_tokens: int = typer.Option(512, help="Most tokens of each answer."),
    concurrency: int = typer.Option(4, help="Questions in flight at once."),
    seed: int = typer.Option(0, help="Generator seed (generated domains)."),
    difficulty: str = typer.Option("lab", help="Generator preset (generated domains)."),
    coordinator_url: str | None = typer.Option(None, help="Override the coordinator's engine."),
    executor_url: str | None = typer.Option(None, help="Override the executor's engine."),
    scorer_url: str | None = typer.Option(None, help="Override the scorer's engine."),
    coordinator_alone: bool = typer.Option(
        True, help="Also ask the coordinator to answer alone (the llm_only baseline)."
    ),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Run every question through every level on the engines and record it all."""
    from tandem.classifier.collect import (
        CollectSummary,
        engine_configs,
        make_header,
        open_engines,
    )
    from tandem.classifier.collect import collect as run_collect
    from tandem.classifier.collected import CollectedFileError
    from tandem.classifier.questions import QuestionFileError, load_questions
    from tandem.datasets import Split

    try:
        splits = [Split(s) for s in split]
    except ValueError:
        _fail(f"--split must be one of {', '.join(SPLITS)}")
        return
    schedule = _levels(levels)
    try:
        records = load_questions(dataset, splits, count, seed=seed, difficulty=difficulty)
    except (QuestionFileError, KeyError) as error:
        _fail(str(error))
        return
    if not records:
        _fail(f"no questions of splits {', '.join(split)} in {dataset}")
    target = out or Path(".tandem/classifier") / f"{Path(dataset).stem}.jsonl"

    async def run() -> CollectSummary:
        engines, specs = await open_engines(
            engine_configs(coordinator_url, executor_url, scorer_url)
        )
        try:
            header = make_header(specs, schedule, answer_tokens, dataset)
            return await run_collect(
                engines,
                records,
                target,
                header,
                concurrency=concurrency,
                coordinator_alone=coordinator_alone,
                progress=progress,
            )
        finally:
            await engines.aclose()

    try:
        summary = asyncio.run(run())
    except (TandemError, CollectedFileError) as error:
        _fail(getattr(error, "message", str(error)))
        return
    typer.echo(
        f"{summary.out}: {summary.questions} questions ({summary.collected} collected now, "
        f"{summary.skipped} already there)"
    )


@app.command()
def train(
    collected: Path = typer.Argument(..., exists=True, dir_okay=False, help="Collected JSONL."),
    out: Path | None = typer.Option(None, help="ONNX model (default: next to the data)."),
    version: str | None = typer.Option(None, help="Version name (default: <stem>-<data hash>)."),
    max_epochs: int = typer.Option(300, help="Most epochs (early stopping on validation)."),
    seed: int = typer.Option(0, help="Torch seed."),
    features: str = typer.Option(
        "prompt-stats",
        help="Feature set: prompt-stats (whole-prompt statistics) or insight-span (the "
        "insights, what follows them and the end marker; carries across domains).",
    ),
) -> None:
    """Train the MLP on the train questions, early-stop on validation, export one ONNX graph."""
    from tandem.classifier.collected import CollectedFileError
    from tandem.classifier.train import train_collected

    target = out or collected.with_suffix(".onnx")
    try:
        result, card = train_collected(
            collected, target, version=version, max_epochs=max_epochs, seed=seed, features=features
        )
    except (CollectedFileError, ValueError, TandemError) as error:
        _fail(str(error))
        return
    console.print(json.dumps({"model": str(target), **card["training"]}, indent=2))
    console.print(f"ONNX vs torch on validation: max |difference| = {result.onnx_max_abs_diff:.2e}")


@app.command()
def calibrate(
    model: Path = typer.Argument(..., exists=True, dir_okay=False, help="ONNX model."),
    collected: Path = typer.Argument(..., exists=True, dir_okay=False, help="Collected JSONL."),
    target: str = typer.Option(
        "coordinator",
        help="Accuracy to reach at least cost: coordinator (coordinator alone's), "
        "last-level (every insight level's) or a number.",
    ),
    lam: float | None = typer.Option(
        None, "--lambda", help="Instead: maximise accuracy - lambda * cost / coordinator cost."
    ),
    cost: str = typer.Option("flops", help="Cost to minimise: flops (generated) or money."),
    grid: int = typer.Option(12, help="Score quantiles tried per level."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Fit per-level thresholds on validation; store them in the model and its card."""
    from tandem.classifier.calibrate import CalibrationSettings, calibrate_model
    from tandem.classifier.collected import CollectedFileError

    if cost not in ("flops", "money"):
        _fail("--cost must be flops or money")
    settings = CalibrationSettings(target=target, lam=lam, cost=cost)
    try:
        result, objective = calibrate_model(
            model, collected, settings, per_level=grid, progress=progress
        )
    except (CollectedFileError, ValueError, TandemError) as error:
        _fail(str(error))
        return
    console.print(f"objective: {result.objective} ({result.settings_tried} settings tried)")
    if result.reached is False:
        console.print("[yellow]no setting reaches the target: the most accurate was taken[/]")
    console.print(
        f"thresholds {result.thresholds}: validation accuracy {result.accuracy:.4f}, cost "
        f"{result.cost / max(objective.reference_cost, 1e-12):.1%} of the coordinator alone"
    )


@app.command()
def rule(
    model: Path = typer.Argument(..., exists=True, dir_okay=False, help="ONNX model."),
    collected: Path = typer.Argument(..., exists=True, dir_okay=False, help="Collected JSONL."),
    kind: str = typer.Option(
        "lookahead",
        help="threshold (the paper's: the calibrated per-level thresholds) or lookahead "
        "(beyond the paper: predicted gain of each later level against its cost).",
    ),
) -> None:
    """Bind the model to the collected file's level schedule and a stop rule (in the file and
    its card); lookahead's models are fitted on train, its lambda chosen on validation."""
    from tandem.classifier.collected import CollectedFileError
    from tandem.classifier.lookahead import install_rule

    try:
        fit = install_rule(model, collected, kind)
    except (CollectedFileError, ValueError, TandemError) as error:
        _fail(str(error))
        return
    if fit is None:
        console.print(f"{model}: the paper's threshold rule")
        return
    console.print(
        f"{model}: lookahead rule, lambda {fit.rule.lam:g} ({fit.objective}); validation "
        f"accuracy {fit.accuracy:.4f}, mean cost {fit.cost:.4g}"
    )


@app.command()
def evaluate(
    model: Path = typer.Argument(..., exists=True, dir_okay=False, help="ONNX model."),
    collected: Path = typer.Argument(..., exists=True, dir_okay=False, help="Collected JSONL."),
    results: Path | None = typer.Option(
        None, help="Results folder (default: <model dir>/results/<model>--<collected>)."
    ),
) -> None:
    """The comparison table and cost-vs-accuracy chart on the test questions (offline)."""
    from tandem.classifier.collected import CollectedFileError
    from tandem.classifier.evaluate import evaluate_model, markdown

    folder = results or model.parent / "results" / f"{model.stem}--{collected.stem}"
    try:
        evaluation = evaluate_model(model, collected, folder)
    except (CollectedFileError, ValueError, TandemError) as error:
        _fail(str(error))
        return
    typer.echo(markdown(evaluation))
    written = sorted(path.name for path in folder.iterdir())
    console.print(f"written to {folder}/ ({', '.join(written)})")


@app.command()
def activate(
    model: Path | None = typer.Argument(
        None, exists=True, dir_okay=False, help="ONNX model to register and activate."
    ),
    version: str | None = typer.Option(
        None, help="Version name (default: the model's); alone, re-activates that version."
    ),
) -> None:
    """Make a model the one active classifier version (the scorer picks it up, no restart)."""
    from shared.db.session import unit_of_work
    from tandem.classifier.activation import activate_model, activate_version

    if model is None and version is None:
        _fail("give a model file, or --version of a registered one")
    try:
        with unit_of_work() as session:
            row = (
                activate_model(session, model, version)
                if model is not None
                else activate_version(session, str(version))
            )
            described = (
                f"{row.version} (sha256 {row.sha256[:12]}, levels {row.levels}, stop rule "
                f"{row.stop_rule.get('kind')}, thresholds {row.thresholds})"
            )
    except TandemError as error:
        _fail(error.message)
        return
    console.print(f"active classifier: {described}")
