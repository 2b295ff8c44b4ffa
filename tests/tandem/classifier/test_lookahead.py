"""The lookahead stop rule against the paper's thresholds on a synthetic collected file, and the
schedule and rule a model file carries.

Three kinds of question: easy (right at every level), needing insights (right only at the last
level) and hopeless (never right). A sufficiency classifier sees only "is this level enough", so
at the early levels it cannot tell a question that needs insights from a hopeless one, and the
threshold rule pays the coordinator for both. Where the features show which kind a question is
(the executor's prompt log-probs differ), the lookahead rule stops on hopeless questions at
level 0; where they do not, it has nothing to go on.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from shared.classifier import SIM_MODEL_PATH, read_metadata, register_version
from shared.classifier.rules import positional
from shared.classifier.runtime import Served
from shared.db.session import unit_of_work
from tandem.classifier.calibrate import CalibrationSettings, resolve_objective
from tandem.classifier.collected import CollectedQuestion, CollectHeader
from tandem.classifier.lookahead import install_rule, sweep_lookahead
from tandem.classifier.model_files import read_card
from tandem.classifier.policies import CostModel, Outcome, tandem
from tandem.classifier.thresholds import Objective, level_table, sweep_grid
from tandem.commands.classifier import app

BUDGETS = [0, 100, 500, 1000]
EASY, NEEDS_INSIGHTS, HOPELESS = "easy", "needs insights", "hopeless"
MEANS = {EASY: -1.0, NEEDS_INSIGHTS: -2.0, HOPELESS: -3.0}


def engine(model: str, parameters: int) -> dict[str, Any]:
    return {
        "model": model,
        "served_model": model,
        "engine": "tgi",
        "url": "http://test",
        "parameters": parameters,
        "price_input_per_mtok": "0.1",
        "price_output_per_mtok": "0.2",
    }


HEADER = {
    "kind": "header",
    "format": "tandem-classifier-collect/1",
    "prompt_version": "v1",
    "coordinator": engine("big", 1_000_000_000),
    "executor": engine("small", 100_000_000),
    "scorer": engine("small", 100_000_000),
    "levels": BUDGETS,
    "answer_tokens": 64,
    "source": "synthetic",
}


def call(prompt: int, generated: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "generated_tokens": generated}


def question(
    qid: str, split: str, kind: str, rng: np.random.Generator, visible: bool
) -> dict[str, Any]:
    mean = MEANS[kind] if visible or kind == EASY else MEANS[NEEDS_INSIGHTS]
    last = len(BUDGETS) - 1
    levels = []
    for t, budget in enumerate(BUDGETS):
        right = kind == EASY or (kind == NEEDS_INSIGHTS and t == last)
        logprobs = [None, *(float(v) for v in rng.normal(mean, 0.3, size=12))]
        levels.append(
            {
                "level": t,
                "budget": budget,
                "extension": None if t == 0 else call(40 + 10 * t, 10),
                "insight_tokens": 10 * t,
                "insight_chars": 40 * t,
                "finished": False,
                "scoring": call(30 + 10 * t, 1),
                "logprobs": logprobs,
                "answer": {
                    "text": "",
                    "answer": None,
                    **call(30 + 10 * t, 5),
                    "correct": right,
                    "mean_logprob": -0.5,
                    "finish_reason": "eos_token",
                },
            }
        )
    return {
        "kind": "question",
        "id": qid,
        "domain": "math",
        "split": split,
        "grader": "math",
        "question": qid,
        "reference": "1",
        "insights": "",
        "levels": levels,
        "coordinator_alone": {
            "text": "",
            "answer": None,
            **call(30, 50),
            "correct": kind != HOPELESS,
            "mean_logprob": -0.5,
            "finish_reason": "eos_token",
        },
    }


def synthetic(visible: bool, per_split: int = 150, seed: int = 3) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    kinds = [EASY, NEEDS_INSIGHTS, HOPELESS]
    return [
        question(f"{split}-{i}", split, kinds[i % 3], rng, visible)
        for split in ("train", "validation", "test")
        for i in range(per_split)
    ]


def sufficiency_scores(questions: list[CollectedQuestion], seed: int) -> np.ndarray:
    """A classifier that knows whether each level is enough, and no more: 0.9 where the
    answer there is right, 0.1 where not (with a little noise)."""
    rng = np.random.default_rng(seed)
    right = np.array([[r.answer.correct for r in q.levels] for q in questions], dtype=float)
    return np.clip(0.1 + 0.8 * right + rng.uniform(-0.05, 0.05, right.shape), 0.0, 1.0)


def value(
    outcomes: list[Outcome], costs: CostModel, objective: Objective
) -> tuple[float, float, float]:
    accuracy = float(np.mean([o.correct for o in outcomes]))
    cost = float(np.mean([costs.flops_generated(o.spend) for o in outcomes]))
    return accuracy - (objective.lam or 0.0) * cost / objective.reference_cost, accuracy, cost


def compare(visible: bool) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """(objective, accuracy, cost) on the test questions: thresholds, then lookahead, each
    fitted on train/validation for accuracy - 0.5 · cost / coordinator-alone cost."""
    questions = [CollectedQuestion.from_dict(q) for q in synthetic(visible)]
    train, validation, test = (
        [q for q in questions if q.split == s] for s in ("train", "validation", "test")
    )
    costs = CostModel.from_header(CollectHeader.from_dict(HEADER))
    metric = costs.flops_generated
    objective = resolve_objective(validation, CalibrationSettings(lam=0.5), metric)
    val_scores, test_scores = sufficiency_scores(validation, 1), sufficiency_scores(test, 2)
    fitted = sweep_grid(level_table(validation, val_scores, metric)).pick(objective)
    thresholds = positional(BUDGETS, fitted.thresholds)
    rule = (
        sweep_lookahead(train, validation, val_scores, metric, objective.reference_cost)
        .pick(objective)
        .rule
    )
    by_thresholds = [tandem(q, test_scores[i], thresholds) for i, q in enumerate(test)]
    by_lookahead = [tandem(q, test_scores[i], rule) for i, q in enumerate(test)]
    return (
        value(by_thresholds, costs, objective),
        value(by_lookahead, costs, objective),
    )


def test_lookahead_beats_thresholds_where_insight_need_shows_in_the_features() -> None:
    (t_value, t_accuracy, t_cost), (l_value, l_accuracy, l_cost) = compare(visible=True)
    # Same questions answered right, without paying the coordinator for the hopeless ones.
    assert l_accuracy >= t_accuracy - 0.02
    assert l_cost < 0.8 * t_cost
    assert l_value > t_value + 0.03


def test_lookahead_gains_nothing_where_the_features_do_not_show_it() -> None:
    (t_value, _, _), (l_value, _, _) = compare(visible=False)
    assert l_value < t_value + 0.03


@pytest.fixture
def model_and_file(tmp_path: Path) -> tuple[Path, Path]:
    model = tmp_path / "synthetic.onnx"
    shutil.copy(SIM_MODEL_PATH, model)
    shutil.copy(SIM_MODEL_PATH.with_suffix(".json"), model.with_suffix(".json"))
    collected = tmp_path / "synthetic.jsonl"
    lines = [HEADER, *synthetic(visible=True, per_split=60)]
    collected.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return model, collected


def test_a_version_carries_its_schedule_and_rule_in_file_card_and_row(
    model_and_file: tuple[Path, Path], database_url: str
) -> None:
    model, collected = model_and_file
    fit = install_rule(model, collected, "lookahead")
    assert fit is not None
    meta = read_metadata(model)
    assert meta.levels == tuple(BUDGETS) and meta.stop_rule is not None
    assert meta.stop_rule["kind"] == "lookahead" and meta.stop_rule["lambda"] == fit.rule.lam
    card = read_card(model)
    assert card["levels"] == BUDGETS and card["stop_rule"]["kind"] == "lookahead"
    with unit_of_work() as session:
        row = register_version(
            session, model, version=f"lookahead-{model.stat().st_mtime_ns}", activate=False
        )
        assert (row.levels, row.stop_rule) == (BUDGETS, meta.stop_rule)
    # What the scorer serves from it: the rule for the schedule (or a prefix), the thresholds
    # by position for levels it was not calibrated on.
    served = Served(meta.thresholds, meta.levels, meta.stop_rule)
    assert served.rule_for(BUDGETS) == fit.rule == served.rule_for(BUDGETS[:2])
    assert served.rule_for([0, 50]) == positional([0, 50], meta.thresholds)
    install_rule(model, collected, "threshold")
    assert read_metadata(model).stop_rule == {"kind": "threshold"}


def test_the_rule_command_writes_the_rule_and_refuses_an_unknown_one(
    model_and_file: tuple[Path, Path],
) -> None:
    model, collected = model_and_file
    runner = CliRunner()
    unknown = runner.invoke(app, ["rule", str(model), str(collected), "--kind", "oracle"])
    assert unknown.exit_code == 2 and "unknown stop rule 'oracle'" in unknown.output
    assert read_metadata(model).stop_rule is None  # nothing written
    done = runner.invoke(app, ["rule", str(model), str(collected)])
    assert done.exit_code == 0, done.output
    assert "lookahead rule, lambda" in done.output
    assert (read_metadata(model).stop_rule or {}).get("kind") == "lookahead"
