"""The evaluation table's and the frontier's arithmetic on a tiny hand-made collected file and a
hand-set model, and the frontier of the committed lab classifier on its committed data.

The model's score is sigmoid(10 · mean prompt log-prob + 20): about 1 for a mean of -1 and about
0 for -3, so which level Tandem stops at is known, and every number of the table can be worked
out by hand from the token counts below.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shared.features import FEATURE_NAMES
from tandem.classifier.evaluate import evaluate_model
from tandem.classifier.frontier import MEASURES, auroc, mixture_accuracy
from tandem.classifier.train import _onnx_graph

ROOT = Path(__file__).resolve().parents[3]

SURE = [None, -1.0, -1.0, -1.0]  # mean -1: score ~1
UNSURE = [None, -3.0, -3.0, -3.0]  # mean -3: score ~0


def engine(model: str, parameters: int, price_in: str, price_out: str) -> dict[str, Any]:
    return {
        "model": model,
        "served_model": model,
        "engine": "tgi",
        "url": "http://test",
        "parameters": parameters,
        "price_input_per_mtok": price_in,
        "price_output_per_mtok": price_out,
    }


HEADER = {
    "kind": "header",
    "format": "tandem-classifier-collect/1",
    "prompt_version": "v1",
    "coordinator": engine("big", 1_000_000_000, "1.0", "2.0"),
    "executor": engine("small", 100_000_000, "0.1", "0.2"),
    "scorer": engine("small", 100_000_000, "0.1", "0.2"),
    "levels": [0, 10, 20],
    "answer_tokens": 64,
    "source": "hand-made",
}


def answer(correct: bool, prompt: int, generated: int, mean: float = -0.5) -> dict[str, Any]:
    return {
        "text": "",
        "answer": None,
        "correct": correct,
        "prompt_tokens": prompt,
        "generated_tokens": generated,
        "mean_logprob": mean,
        "finish_reason": "eos_token",
    }


def level(
    index: int,
    extension: tuple[int, int] | None,
    logprobs: list[float | None],
    executed: dict[str, Any],
    *,
    finished: bool = False,
    scoring_prompt: int = 20,
) -> dict[str, Any]:
    return {
        "level": index,
        "budget": [0, 10, 20][index],
        "extension": None
        if extension is None
        else {"prompt_tokens": extension[0], "generated_tokens": extension[1]},
        "insight_tokens": 10 * index,
        "insight_chars": 0,
        "finished": finished,
        "scoring": {"prompt_tokens": scoring_prompt, "generated_tokens": 1},
        "logprobs": logprobs,
        "answer": executed,
    }


def question(
    qid: str, split: str, levels: list[dict[str, Any]], alone: dict[str, Any]
) -> dict[str, Any]:
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
        "coordinator_alone": alone,
    }


QUESTIONS = [
    # T1: unsure at level 0 (wrong), sure at level 1 (right): Tandem stops at level 1.
    question(
        "t1",
        "test",
        [
            level(0, None, UNSURE, answer(False, 20, 5, mean=-2.0)),
            level(1, (30, 10), SURE, answer(True, 30, 5), scoring_prompt=30),
            level(2, (40, 10), SURE, answer(True, 40, 5), scoring_prompt=40),
        ],
        answer(True, 20, 50),
    ),
    # T2: sure and right at level 0: Tandem stops there. The coordinator finishes at level 1.
    question(
        "t2",
        "test",
        [
            level(0, None, SURE, answer(True, 20, 5, mean=-0.1)),
            level(1, (30, 4), SURE, answer(False, 25, 5), finished=True),
            level(2, None, SURE, answer(False, 25, 5), finished=True),
        ],
        answer(False, 20, 40),
    ),
    # Validation, for the cascade: escalating V1 (unsure, wrong; coordinator right) and not V2.
    question(
        "v1",
        "validation",
        [level(t, None, UNSURE, answer(False, 20, 5, mean=-2.0)) for t in range(3)],
        answer(True, 20, 50),
    ),
    question(
        "v2",
        "validation",
        [level(t, None, SURE, answer(True, 20, 5, mean=-0.1)) for t in range(3)],
        answer(False, 20, 40),
    ),
]


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    collected = tmp_path / "hand.jsonl"
    collected.write_text("".join(json.dumps(line) + "\n" for line in [HEADER, *QUESTIONS]))
    weight = np.zeros((1, len(FEATURE_NAMES)))
    weight[0, FEATURE_NAMES.index("mean")] = 10.0
    graph = _onnx_graph(
        np.zeros(len(FEATURE_NAMES)),
        np.ones(len(FEATURE_NAMES)),
        [(weight, np.array([20.0]))],
        {
            "version": "hand-v1",
            "feature_names": json.dumps(list(FEATURE_NAMES)),
            "thresholds": json.dumps([0.5, 0.5, 0.5]),
            "data_hash": "0" * 64,
        },
    )
    import onnx

    model = tmp_path / "hand.onnx"
    onnx.save(graph, str(model))
    # Calibrated for a validation target of 100%: the cascade must escalate V1 to reach it.
    card = {"calibration": {"settings": {"target": "1.0", "lam": None, "cost": "flops"}}}
    model.with_suffix(".json").write_text(json.dumps(card))
    return model, collected


def test_table_arithmetic(files: tuple[Path, Path], tmp_path: Path) -> None:
    model, collected = files
    evaluation = evaluate_model(model, collected, tmp_path / "results")
    rows = {row.method.split(" (")[0]: row for row in evaluation.rows}
    assert list(rows) == [
        "coordinator alone",
        "executor alone",
        "fixed level 1",
        "fixed level 2",
        "cascade",
        "tandem",
    ]

    alone = rows["coordinator alone"]
    assert (alone.questions, alone.correct) == (2, 1)
    assert alone.coordinator_tokens == 45.0 and alone.executor_tokens == 0.0
    assert alone.gflops_generated == pytest.approx(2 * 1e9 * 45 / 1e9)  # 90
    assert alone.money_per_1k == pytest.approx((20 * 1 + 50 * 2 + 20 * 1 + 40 * 2) / 2 / 1000)
    assert (alone.flops_share, alone.money_share) == (1.0, 1.0)

    executor = rows["executor alone"]
    assert executor.accuracy == 0.5 and executor.coordinator_tokens == 0.0
    assert executor.gflops_generated == pytest.approx(2 * 1e8 * 5 / 1e9)

    second = rows["fixed level 2"]
    assert second.accuracy == 0.5
    assert second.coordinator_tokens == (20 + 4) / 2  # T2's coordinator stopped at level 1
    assert second.gflops_prompt == pytest.approx(
        2 * (1e9 * (30 + 40 + 30) + 1e8 * (40 + 25)) / 2 / 1e9
    )

    # Tandem: T1 stops and answers at level 1, T2 at level 0; both right.
    tandem = rows["tandem"]
    assert tandem.accuracy == 1.0
    assert tandem.details["stopped_at"] == {0: 1, 1: 1}
    assert tandem.details["answered_at"] == {0: 1, 1: 1}
    assert (tandem.coordinator_tokens, tandem.executor_tokens, tandem.scoring_passes) == (
        5.0,
        5.0,
        1.5,
    )
    generated = (2 * 1e9 * 10 + 2 * 1e8 * (5 + 2)) + 2 * 1e8 * (5 + 1)
    assert tandem.gflops_generated == pytest.approx(generated / 2 / 1e9)  # 11.3
    money = (30 * 1 + 10 * 2 + (20 + 30) * 0.1 + 2 * 0.2 + 30 * 0.1 + 5 * 0.2) + (
        20 * 0.1 + 0.2 + 20 * 0.1 + 5 * 0.2
    )
    assert tandem.money_per_1k == pytest.approx(money / 2 / 1000)
    assert tandem.flops_share == pytest.approx(11.3 / 90)
    assert tandem.money_share == pytest.approx((money / 2) / 110)

    # The cascade's threshold is V2's confidence: V1 (-2.0) escalates, V2 (-0.1) does not.
    cascade = rows["cascade"]
    assert cascade.details["threshold"] == pytest.approx(-0.1)
    assert cascade.accuracy == 1.0
    assert cascade.coordinator_tokens == 25.0  # T1 escalated (50), T2 not
    assert cascade.executor_tokens == 5.0

    table = (tmp_path / "results" / "table.md").read_text()
    assert "| tandem | 100.0% | 5.0 | 5.0 | 1.50 | 11.30 |" in table
    assert "| coordinator alone | 50.0% | 45.0 | 0.0 | 0.00 | 90.00 |" in table
    saved = json.loads((tmp_path / "results" / "results.json").read_text())
    assert [r["method"] for r in saved["rows"]] == [r.method for r in evaluation.rows]
    assert (tmp_path / "results" / "cost_vs_accuracy.png").read_bytes()[:4] == b"\x89PNG"
    card = json.loads(model.with_suffix(".json").read_text())
    assert card["evaluation"]["tandem_flops_share"] == pytest.approx(11.3 / 90)


def test_savings_baseline_is_what_the_savings_report_reads(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    from services.api.reports.baseline import load_baseline

    model, collected = files
    evaluate_model(model, collected, tmp_path / "results")
    table = load_baseline(tmp_path / "results" / "savings_baseline.json")
    assert table is not None and set(table.domains) == {"math"}
    # (20 + 50 * 2) and (20 + 40 * 2) millionths of a dollar, over two test questions
    assert table.domains["math"].mean_cost == Decimal("0.00011")
    assert table.domains["math"].sample_size == 2
    assert "coordinator alone (big)" in table.source


def test_mixture_of_fixed_levels_is_their_capped_upper_envelope() -> None:
    cost = np.array([1.0, 3.0, 5.0])
    accuracy = np.array([0.2, 0.6, 0.5])
    budgets = np.array([0.5, 1.0, 2.0, 4.0, 6.0])
    got = mixture_accuracy(np.broadcast_to(cost, (5, 3)), accuracy, budgets)
    assert np.isnan(got[0])  # nothing is that cheap
    # Half level 0, half level 1 at cost 2; beyond level 1 nothing better is on sale.
    assert got[1:] == pytest.approx([0.2, 0.4, 0.6, 0.6])


def test_auroc_counts_ties_as_halves_and_needs_both_classes() -> None:
    labels = np.array([False, False, True, True])
    assert auroc(np.array([0.1, 0.2, 0.8, 0.9]), labels) == 1.0
    assert auroc(np.array([0.9, 0.8, 0.2, 0.1]), labels) == 0.0
    assert auroc(np.array([0.5, 0.5, 0.5, 0.5]), labels) == 0.5
    assert auroc(np.array([0.1, 0.6, 0.6, 0.9]), labels) == pytest.approx(0.875)
    assert auroc(np.array([0.1, 0.2]), np.array([True, True])) is None


def test_frontier_rows_agree_with_the_table(files: tuple[Path, Path], tmp_path: Path) -> None:
    model, collected = files
    evaluation = evaluate_model(model, collected, tmp_path / "results")
    frontier = json.loads((tmp_path / "results" / "frontier.json").read_text())
    policies = {p["name"]: p for p in frontier["policies"]}
    assert frontier["measures"] == list(MEASURES)
    shipped = policies["stop rule (shipped thresholds)"]
    tandem = evaluation.row("tandem")
    assert shipped["accuracy"] == tandem.accuracy
    generated, total, money = shipped["cost"]
    assert generated == pytest.approx(tandem.gflops_generated * 1e9)
    assert total == pytest.approx((tandem.gflops_generated + tandem.gflops_prompt) * 1e9)
    assert money == pytest.approx(tandem.money_per_1k / 1000)
    # Oracle: T1 is first right at level 1, T2 at level 0; both right, no scoring passes.
    oracle = policies["oracle (cheapest correct level)"]
    assert oracle["accuracy"] == 1.0
    assert oracle["cost"][0] == pytest.approx((2 * 1e9 * 10 + 2 * 1e8 * 5 + 2 * 1e8 * 5) / 2)
    fixed = [name for name in policies if name.startswith("fixed level")]
    assert fixed == ["fixed level 1", "fixed level 2"]
    # Every fitted rule carries its weights, thresholds and intervals.
    fitted = [p for name, p in policies.items() if name.startswith("stop rule fitted")]
    assert fitted and all(p["details"]["lambdas"] and p["intervals"] for p in fitted)
    assert sum(len(p["details"]["lambdas"]) for p in fitted) == len(frontier["meta"]["lambdas"])
    versus = shipped["intervals"]["versus_mixture"]["total FLOPs"]
    assert versus["difference"] == pytest.approx(1.0 - versus["mixture_accuracy"], abs=1e-4)
    assert [row["level"] for row in frontier["aurocs"]] == [0, 1, 2]
    assert (tmp_path / "results" / "frontier.png").read_bytes()[:4] == b"\x89PNG"
    assert (
        "| stop rule (shipped thresholds) | 100.0% |"
        in (tmp_path / "results" / "frontier.md").read_text()
    )
    # No train questions here: nothing to fit the lookahead rule's models on, so no such rows.
    assert frontier["meta"]["train_questions"] == 0
    assert not [name for name in policies if name.startswith("lookahead fitted")]


def test_committed_lab_classifier_sits_below_the_fixed_level_mixture(tmp_path: Path) -> None:
    """The committed lab classifier on its committed data: what the frontier shows is what
    was measured by hand, and it says the threshold rule does not beat a constant, while the
    lookahead rule over the same features does."""
    source = ROOT / "models" / "classifier" / "lab-catalog-mlp-v1.onnx"
    model = tmp_path / source.name
    model.write_bytes(source.read_bytes())
    model.with_suffix(".json").write_text(source.with_suffix(".json").read_text())
    collected = ROOT / "models" / "classifier" / "data" / "lab-catalog.jsonl"
    evaluate_model(model, collected, tmp_path / "results")
    frontier = json.loads((tmp_path / "results" / "frontier.json").read_text())
    policies = {p["name"]: p for p in frontier["policies"]}
    assert frontier["meta"]["test_questions"] == 300

    def shares(name: str) -> list[float]:
        return [round(100 * share, 1) for share in policies[name]["cost_share"]]

    assert policies["fixed level 1"]["accuracy"] == pytest.approx(0.297, abs=5e-4)
    assert shares("fixed level 1")[0] == 29.3
    assert policies["fixed level 2"]["accuracy"] == pytest.approx(0.45)
    assert policies["oracle (cheapest correct level)"]["accuracy"] == pytest.approx(0.573, abs=5e-4)
    assert shares("oracle (cheapest correct level)")[0] == 23.1
    shipped = policies["stop rule (shipped thresholds)"]
    assert shipped["accuracy"] == pytest.approx(0.29)
    assert shares("stop rule (shipped thresholds)")[:2] == [33.1, 86.7]
    # Below the best mixture of fixed levels at its total FLOPs, the interval excluding 0.
    versus = shipped["intervals"]["versus_mixture"]["total FLOPs"]
    assert versus["difference"] == pytest.approx(-0.083, abs=1e-3)
    assert versus["interval"][1] < 0
    # No fitted weight buys more than 1 point over the mixture at its cost.
    for name, policy in policies.items():
        if name.startswith("stop rule fitted"):
            assert policy["intervals"]["versus_mixture"]["total FLOPs"]["difference"] < 0.01
    # The lookahead rule (beyond the paper) does: about 4 to 5 points at some weights, with
    # the interval above 0, below the coordinator alone's total FLOPs.
    lookahead = {
        name: policy["intervals"]["versus_mixture"]["total FLOPs"]
        for name, policy in policies.items()
        if name.startswith("lookahead fitted")
    }
    assert sum(len(policies[name]["details"]["lambdas"]) for name in lookahead) == len(
        frontier["meta"]["lambdas"]
    )
    best = max(lookahead, key=lambda name: lookahead[name]["difference"] or -1.0)
    assert lookahead[best]["difference"] > 0.04 and lookahead[best]["interval"][0] > 0
    assert shares(best)[1] < 100
    # One feature (prompt length) ranks answers better than the classifier at levels 0 to 2.
    for row in frontier["aurocs"][:3]:
        assert row["best_feature"] == "seq_length"
        assert row["best_feature_test"] > row["classifier"]
