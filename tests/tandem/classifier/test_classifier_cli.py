"""``tandem classifier`` end to end on two simulator engine servers: collect (resumed) → train →
calibrate → evaluate, then activate in the test database.

The simulator's executor is right more often the more insight it sees (and never turns a right
answer wrong), and its coordinator, asked to answer alone with a budget long enough, writes its
whole worked computation: the numbers below follow from that contract, not from tuning.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from shared.classifier import DEFAULT_MODEL_PATH, ClassifierRuntime, read_metadata
from shared.errors import NotFoundError, ValidationFailed
from tandem.classifier.activation import activate_model, activate_version
from tandem.classifier.collected import Call, of_split, read_collected
from tandem.classifier.model_files import set_thresholds
from tandem.cli import app
from tests.services.engine.server_fixtures import engine_server

FAST = {"TANDEM_ENGINE_SIM_TOKENS_PER_S": "0"}
LEVELS = (0, 100, 500, 1000)
runner = CliRunner()


@pytest.fixture(scope="module")
def sim_urls() -> Iterator[tuple[str, str]]:
    with (
        engine_server("sim", "sim-coordinator", env=FAST) as coordinator,
        engine_server("sim", "sim-executor", env=FAST) as executor,
    ):
        yield coordinator, executor


@pytest.fixture(scope="module")
def sim_env(sim_urls: tuple[str, str]) -> Iterator[None]:
    patch = pytest.MonkeyPatch()
    coordinator, executor = sim_urls
    patch.setenv("TANDEM_COORDINATOR_ENGINE_URL", coordinator)
    patch.setenv("TANDEM_COORDINATOR_ENGINE_MODEL_ID", "sim-coordinator")
    patch.setenv("TANDEM_EXECUTOR_ENGINE_URL", executor)
    patch.setenv("TANDEM_EXECUTOR_ENGINE_MODEL_ID", "sim-executor")
    patch.delenv("TANDEM_SCORER_ENGINE_URL", raising=False)
    yield
    patch.undo()


def cli(*args: str) -> str:
    result = runner.invoke(app, ["classifier", *args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def collect(out: Path, *args: str) -> str:
    return cli(
        "collect",
        "--dataset",
        "arithmetic",
        "--out",
        str(out),
        "--levels",
        ",".join(map(str, LEVELS)),
        "--answer-tokens",
        "1024",  # the sim coordinator alone writes its whole computation (up to ~750 tokens)
        "--no-progress",
        *args,
    )


@pytest.fixture(scope="module")
def pipeline(sim_env: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("classifier")
    data = work / "arith.jsonl"
    collect(data, "--split", "train", "--count", "30")
    collect(data, "--split", "validation", "--split", "test", "--count", "12")
    model = work / "arith.onnx"
    cli("train", str(data), "--out", str(model), "--version", "sim-test-v1")
    cli("calibrate", str(model), str(data), "--no-progress")
    results = work / "results"
    cli("evaluate", str(model), str(data), "--results", str(results))
    return {"data": data, "model": model, "results": results, "work": work}


def test_collected_file_has_every_level_and_the_engines(pipeline: dict[str, Path]) -> None:
    header, questions = read_collected(pipeline["data"])
    assert (header.coordinator.served_model, header.executor.served_model) == (
        "sim-coordinator",
        "sim-executor",
    )
    assert header.prompt_version == "v1" and header.levels == LEVELS
    assert [len(of_split(questions, s)) for s in ("train", "validation", "test")] == [30, 12, 12]
    assert len({q.id for q in questions}) == 54
    for q in questions:
        assert [r.level for r in q.levels] == [0, 1, 2, 3]
        tokens = [r.insight_tokens for r in q.levels]
        assert tokens == sorted(tokens) and tokens[0] == 0
        assert 0 < tokens[1] <= 100  # extended by at most each level's budget
        assert all(r.insight_tokens <= b for r, b in zip(q.levels, LEVELS, strict=True))
        assert q.levels[-1].finished  # the sim's insights (450-750 tokens) end by level 3
        assert q.insights_at(1) == q.insights[: q.levels[1].insight_chars]
        assert q.insights.startswith("Goal:") and "<end_of_insights>" not in q.insights
        # more insight never turns one of the sim executor's right answers wrong
        right = [r.answer.correct for r in q.levels]
        assert right == sorted(right)
        assert q.coordinator_alone is not None and q.coordinator_alone.correct
        assert all(len(r.logprobs) == r.scoring.prompt_tokens for r in q.levels)
        calls = [r.scoring for r in q.levels] + [r.answer.call for r in q.levels]
        assert all(0 <= c.cached_tokens <= c.prompt_tokens for c in calls)
    # The engines' prefix cache serves the executor the prompt its scorer has just read.
    answers = [r.answer.call for q in questions for r in q.levels]
    assert sum(c.cached_tokens > 0 for c in answers) > len(answers) / 2


def test_a_call_without_cached_tokens_is_written_as_before() -> None:
    assert Call(10, 3).to_dict() == {"prompt_tokens": 10, "generated_tokens": 3}
    assert Call.from_dict({"prompt_tokens": 10, "generated_tokens": 3}) == Call(10, 3, 0)
    cached = Call(10, 3, 8)
    assert Call.from_dict(cached.to_dict()) == cached


def test_collect_resumes_and_refuses_another_setup(pipeline: dict[str, Path]) -> None:
    copy = pipeline["work"] / "resume.jsonl"
    shutil.copy(pipeline["data"], copy)
    output = collect(copy, "--split", "test", "--count", "12")
    assert "0 collected now, 12 already there" in output
    # An interrupted run leaves half a line: it is dropped and that question collected again.
    text = copy.read_text()
    copy.write_text(text[: len(text) - 200])
    output = collect(copy, "--split", "test", "--count", "12")
    assert "1 collected now, 11 already there" in output
    assert len(read_collected(copy)[1]) == 54
    refused = runner.invoke(
        app,
        ["classifier", "collect", "--out", str(copy), "--levels", "0,50", "--no-progress"],
    )
    assert refused.exit_code == 2 and "collected differently" in refused.output


def test_model_is_trained_calibrated_and_carries_its_thresholds(
    pipeline: dict[str, Path],
) -> None:
    meta = read_metadata(pipeline["model"])
    card = json.loads(pipeline["model"].with_suffix(".json").read_text())
    assert meta.version == card["version"] == "sim-test-v1"
    assert list(meta.thresholds) == card["thresholds"] and len(meta.thresholds) == len(LEVELS)
    assert card["training"]["onnx_max_abs_diff"] < 1e-5
    assert card["trained_on"]["train_questions"] == 30
    assert card["trained_on"]["validation_questions"] == 12
    assert card["calibration"]["validation_questions"] == 12
    assert card["calibration"]["target_accuracy"] == 1.0  # the sim coordinator alone


def test_evaluation_table_is_consistent_with_the_collected_answers(
    pipeline: dict[str, Path],
) -> None:
    _, questions = read_collected(pipeline["data"])
    test = of_split(questions, "test")
    saved = json.loads((pipeline["results"] / "results.json").read_text())
    rows = {r["method"].split(" (")[0]: r for r in saved["rows"]}
    assert list(rows) == [
        "coordinator alone",
        "executor alone",
        "fixed level 1",
        "fixed level 2",
        "fixed level 3",
        "cascade",
        "tandem",
    ]
    for level, name in enumerate(["executor alone", "fixed level 1", "fixed level 2"]):
        expected = np.mean([q.levels[level].answer.correct for q in test])
        assert rows[name]["accuracy"] == pytest.approx(expected)
    accuracies = [rows[n]["accuracy"] for n in list(rows)[1:5]]
    assert accuracies == sorted(accuracies)  # the fixed levels: more insight, more right
    assert rows["coordinator alone"]["accuracy"] == 1.0
    coordinator = rows["coordinator alone"]
    for row in rows.values():
        assert 0 <= row["accuracy"] <= 1
        assert row["flops_share"] == pytest.approx(
            row["gflops_generated"] / coordinator["gflops_generated"]
        )
    tandem = rows["tandem"]
    assert 1 <= tandem["scoring_passes"] <= len(LEVELS)
    assert tandem["coordinator_tokens"] <= rows["fixed level 3"]["coordinator_tokens"]
    assert sum(tandem["details"]["stopped_at"].values()) == len(test)
    table = (pipeline["results"] / "table.md").read_text()
    assert table.count("\n| ") == 1 + len(rows)  # the header and one line per method
    assert (pipeline["results"] / "cost_vs_accuracy.png").read_bytes()[:4] == b"\x89PNG"


def test_activate_makes_the_scorer_use_the_new_version(
    pipeline: dict[str, Path], db_session: Session
) -> None:
    model = pipeline["model"]
    runtime = ClassifierRuntime(default_path=DEFAULT_MODEL_PATH)
    row = activate_model(db_session, model)
    assert row.active and row.version == "sim-test-v1"
    assert row.thresholds == list(read_metadata(model).thresholds)
    assert row.metrics["training"]["onnx_max_abs_diff"] < 1e-5
    assert row.metrics["evaluation"]["test_questions"] == 12
    assert runtime.current(db_session).version == "sim-test-v1"

    # The same file under a new name, then back: each activation is seen by the next call.
    other = activate_model(db_session, model, version="sim-test-v1b")
    assert other.active and not row.active
    assert runtime.current(db_session).version == "sim-test-v1b"
    activate_version(db_session, "sim-test-v1")
    assert runtime.current(db_session).version == "sim-test-v1"
    assert activate_model(db_session, model).id == row.id  # same bytes, same version: reused

    changed = pipeline["work"] / "changed.onnx"
    shutil.copy(model, changed)
    set_thresholds(changed, [0.5] * len(LEVELS))  # other bytes, same version name
    with pytest.raises(ValidationFailed, match="already registered with another file"):
        activate_model(db_session, changed, version="sim-test-v1")
    with pytest.raises(NotFoundError):
        activate_version(db_session, "no-such-version")


def test_activate_needs_a_model_or_a_version() -> None:
    result = runner.invoke(app, ["classifier", "activate"])
    assert result.exit_code == 2 and "give a model file" in result.output


def test_a_span_model_on_a_layout_without_a_known_span_is_a_clear_error(tmp_path: Path) -> None:
    models = Path(__file__).resolve().parents[3] / "models" / "classifier"
    model = tmp_path / "span.onnx"
    shutil.copy(models / "lab-v3-shop-span-v1.onnx", model)
    shutil.copy(models / "lab-v3-shop-span-v1.json", model.with_suffix(".json"))
    collected = models / "data" / "gemma-smollm2-humaneval.jsonl"  # chat-template prompts
    for command in (
        ["evaluate", str(model), str(collected), "--results", str(tmp_path / "results")],
        ["calibrate", str(model), str(collected)],
        ["train", str(collected), "--out", str(tmp_path / "x.onnx"), "--features", "insight-span"],
    ):
        result = runner.invoke(app, ["classifier", *command])
        assert result.exit_code == 2, result.output
        assert "insight-span features need a prompt layout" in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
