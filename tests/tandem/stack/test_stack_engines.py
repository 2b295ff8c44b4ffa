"""Each engine kind the local stack serves: its models, and the classifier trained on them with
the levels it was calibrated on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.api.settings import ApiSettings
from services.scorer.settings import ScorerSettings
from shared.classifier import DEFAULT_MODEL_PATH
from shared.classifier.runtime import resolve_path
from tandem.classifier.model_files import read_card
from tandem.lab.configs import MODELS_DIR as LAB_MODELS_DIR
from tandem.stack import stack
from tandem.stack.settings import StackSettings


def card(tmp_path: Path, levels: list[int]) -> Path:
    model = tmp_path / "sim.onnx"
    model.write_bytes(b"onnx")
    model.with_suffix(".json").write_text(
        json.dumps({"trained_on": {"header": {"levels": levels}}})
    )
    return model


def test_the_shipped_defaults_are_the_real_pair_classifier_and_its_levels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TANDEM_LEVELS", raising=False)
    monkeypatch.delenv("TANDEM_CLASSIFIER_DEFAULT_PATH", raising=False)
    default = resolve_path(ScorerSettings().classifier_default_path)
    assert default == DEFAULT_MODEL_PATH
    trained_on = read_card(default)["trained_on"]
    assert trained_on["header"]["coordinator"]["model"] == "gemma3-270m"
    assert ApiSettings().levels == trained_on["header"]["levels"]


def test_simulator_engines_get_the_simulator_classifier_and_its_levels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(stack.STACK_CLASSIFIERS, "sim", card(tmp_path, [0, 100, 500]))
    monkeypatch.delenv("TANDEM_LEVELS", raising=False)
    monkeypatch.delenv("TANDEM_CLASSIFIER_DEFAULT_PATH", raising=False)
    sim = stack.Stack(StackSettings(engines="sim")).environment()
    assert sim["TANDEM_CLASSIFIER_DEFAULT_PATH"] == str(tmp_path / "sim.onnx")
    assert json.loads(sim["TANDEM_LEVELS"]) == [0, 100, 500]
    real = stack.Stack(StackSettings(engines="gguf")).environment()
    assert "TANDEM_LEVELS" not in real and "TANDEM_CLASSIFIER_DEFAULT_PATH" not in real


def test_a_user_setting_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(stack.STACK_CLASSIFIERS, "sim", card(tmp_path, [0, 100, 500]))
    monkeypatch.setenv("TANDEM_LEVELS", "[0, 100]")
    env = stack.Stack(StackSettings(engines="sim")).environment()
    assert "TANDEM_LEVELS" not in env and "TANDEM_CLASSIFIER_DEFAULT_PATH" not in env


def test_lab_engines_serve_the_lab_pair_with_its_parameter_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TANDEM_LEVELS", raising=False)
    monkeypatch.delenv("TANDEM_CLASSIFIER_DEFAULT_PATH", raising=False)
    lab = stack.Stack(StackSettings(engines="lab"))
    args = lab.engine_args("coordinator")
    assert args[args.index("--model") + 1] == str(LAB_MODELS_DIR / "coordinator")
    assert args[args.index("--model-id") + 1] == "tandem-lab-coordinator"
    env = lab.environment()
    for role in ("coordinator", "executor"):
        manifest = json.loads((LAB_MODELS_DIR / role / "manifest.json").read_text())
        assert env[f"TANDEM_{role.upper()}_ENGINE_MODEL_ID"] == f"tandem-lab-{role}"
        assert env[f"TANDEM_{role.upper()}_ENGINE_MODEL_PARAMETERS"] == str(manifest["parameters"])


@pytest.mark.parametrize("pair", ["v2", "v3"])
def test_lab_engines_serve_their_pair_with_its_classifier_and_its_schedule(
    pair: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TANDEM_LEVELS", raising=False)
    monkeypatch.delenv("TANDEM_CLASSIFIER_DEFAULT_PATH", raising=False)
    lab = stack.Stack(StackSettings(engines=f"lab-{pair}"))
    models = LAB_MODELS_DIR / pair
    args = lab.engine_args("executor")
    assert args[args.index("--model") + 1] == str(models / "executor")
    assert args[args.index("--model-id") + 1] == f"tandem-lab-{pair}-executor"
    env = lab.environment()
    classifier = Path(env["TANDEM_CLASSIFIER_DEFAULT_PATH"])
    header = read_card(classifier)["trained_on"]["header"]
    # The classifier was collected on these very engines, at this schedule.
    assert header["coordinator"]["model"] == env["TANDEM_COORDINATOR_ENGINE_MODEL_ID"]
    assert header["executor"]["model"] == env["TANDEM_EXECUTOR_ENGINE_MODEL_ID"]
    assert json.loads(env["TANDEM_LEVELS"]) == header["levels"]
    for role in ("coordinator", "executor"):
        manifest = json.loads((models / role / "manifest.json").read_text())
        assert env[f"TANDEM_{role.upper()}_ENGINE_MODEL_PARAMETERS"] == str(manifest["parameters"])


@pytest.mark.parametrize("engines", ["lab-v2", "lab-v3"])
def test_the_shop_pairs_demo_question_needs_one_insight(engines: str) -> None:
    from tandem.datasets import Split, generate
    from tandem.lab.configs import SEED
    from tandem.stack.demo import demo_question

    question = demo_question(engines)
    record = next(q for q in generate("shop", Split.TEST, 50, seed=SEED) if q.question == question)
    assert record.meta["missing_facts"] == 1 and record.insights.startswith("Retrieval:")


def test_stack_env_prints_the_services_environment_as_exports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from tandem.cli import app

    monkeypatch.setenv("TANDEM_STACK_ENGINES", "lab")
    monkeypatch.delenv("TANDEM_SAVINGS_BASELINE_FILE", raising=False)
    monkeypatch.delenv("TANDEM_LEVELS", raising=False)
    monkeypatch.delenv("TANDEM_CLASSIFIER_DEFAULT_PATH", raising=False)
    result = CliRunner().invoke(app, ["stack", "env"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "export TANDEM_COORDINATOR_ENGINE_MODEL_ID=tandem-lab-coordinator" in lines
    assert "export TANDEM_LEVELS='[0, 8, 16, 24, 32]'" in lines
    assert all(line.startswith("export TANDEM_") for line in lines)
    # The coordinator-alone baseline measured with the lab classifier: the dashboard's savings.
    baseline = "models/classifier/results/lab-catalog-mlp-v1/savings_baseline.json"
    assert any(line.endswith(baseline) for line in lines)


def test_a_checkpoint_reads_as_its_score_against_its_threshold_or_rule() -> None:
    from shared.jobs.audit import score_line

    entry = {"level": 1, "score": 0.9986, "threshold": 0.99634, "decision": "stop"}
    assert score_line(entry) == "level 1: score 0.9986 threshold 0.9963 -> stop"
    ruled = {"level": 0, "score": 0.2, "threshold": None, "rule": "lookahead", "decision": "go"}
    assert score_line(ruled) == "level 0: score 0.2000 rule lookahead -> go"


def test_the_demo_prints_the_saving_measured_on_the_same_question() -> None:
    from tandem.stack.demo import saving_lines

    def job(cost: str, *flops: str, status: str = "succeeded") -> dict[str, object]:
        return {
            "status": status,
            "cost": cost,
            "answer": "54",
            "usage": [{"flops": f} for f in flops],
        }

    tandem = job("0.000040", "100000000", "50000000")
    lines = saving_lines(tandem, job("0.000100", "600000000"))
    assert lines == [
        "the coordinator alone on the same question: $0.000100, 0.600 GFLOPs (answer 54)",
        "Tandem: 40% of its cost, 25% of its FLOPs",
    ]
    assert saving_lines(tandem, job("0.0001", "1", status="failed")) == []
    assert saving_lines(tandem, None) == []
