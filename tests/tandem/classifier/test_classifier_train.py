"""Trainer → one ONNX graph with the scaler inside, metadata, parity with torch; the serving
runtime loads it, refuses a foreign feature list and follows the active version."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from shared.classifier import ClassifierRuntime, read_metadata, register_version
from shared.classifier import repository as classifier_repo
from shared.classifier.rules import ThresholdRule
from shared.errors import ConfigurationError
from shared.features import FEATURE_NAMES, features
from tandem.classifier.train import train


def rows(count: int, seed: int = 0) -> list[dict[str, Any]]:
    """Separable on the mean log-prob: confident prompts are answered right."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        label = i % 2
        centre = -1.0 if label else -4.0
        logprobs = [rng.gauss(centre, 0.5) for _ in range(rng.randint(20, 60))]
        out.append(
            {
                "features": features(logprobs, rng.randint(0, 3), rng.randint(0, 500)),
                "label": label,
                "split": "validation" if i % 5 == 0 else "train",
            }
        )
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    path = tmp_path_factory.mktemp("clf") / "m.onnx"
    result = train(
        rows(300), path, version="unit-v1", thresholds=[0.9, 0.7, 0.6, 0.5], max_epochs=60
    )
    return path, result


def test_onnx_matches_torch_and_learns(trained: tuple[Path, Any]) -> None:
    _, result = trained
    assert result.onnx_max_abs_diff < 1e-5
    assert result.validation_accuracy > 0.9


def test_metadata_round_trip(trained: tuple[Path, Any]) -> None:
    path, result = trained
    meta = read_metadata(path)
    assert meta.version == "unit-v1"
    assert meta.feature_names == FEATURE_NAMES
    assert meta.thresholds == (0.9, 0.7, 0.6, 0.5)
    assert meta.data_hash == result.data_hash and len(meta.data_hash) == 64


def test_scaler_is_inside_the_graph(trained: tuple[Path, Any]) -> None:
    import onnx

    ops = [node.op_type for node in onnx.load(str(trained[0])).graph.node]
    assert ops[:2] == ["Sub", "Div"] and ops[-1] == "Sigmoid" and ops.count("Gemm") == 3


def test_runtime_follows_the_active_version(db_session: Session, trained: tuple[Path, Any]) -> None:
    path, _ = trained
    runtime = ClassifierRuntime(default_path=path)
    first = register_version(db_session, path, version="unit-a", thresholds=[0.1])
    loaded = runtime.current(db_session)
    assert (loaded.version, loaded.thresholds) == ("unit-a", (0.1,))
    # No schedule in this file: by position, past the fitted list the last one.
    rule = loaded.rule_for([0, 10, 20, 30])
    assert isinstance(rule, ThresholdRule) and rule.threshold(30) == 0.1
    confident = features([-1.0] * 40, 1, 100)
    unsure = features([-4.0] * 40, 1, 100)
    assert loaded.score(confident) > 0.5 > loaded.score(unsure)

    second = register_version(db_session, path, version="unit-b", thresholds=[0.2, 0.3])
    assert not first.active and second.active
    assert runtime.current(db_session).version == "unit-b"
    classifier_repo.activate(db_session, first)
    assert runtime.current(db_session).version == "unit-a"


def test_runtime_refuses_a_foreign_feature_list(
    db_session: Session, trained: tuple[Path, Any], tmp_path: Path
) -> None:
    import onnx

    model = onnx.load(str(trained[0]))
    for prop in model.metadata_props:
        if prop.key == "feature_names":
            prop.value = json.dumps(["something", "else"])
    foreign = tmp_path / "foreign.onnx"
    onnx.save(model, str(foreign))
    register_version(db_session, foreign, version="unit-foreign")
    with pytest.raises(ConfigurationError, match="no feature set the scorer computes"):
        ClassifierRuntime(default_path=trained[0]).current(db_session)


def test_the_span_features_need_a_layout_and_a_schedule_that_tell_where_the_insights_are() -> None:
    from dataclasses import replace

    from shared.features import INSIGHT_SPAN, PROMPT_STATS
    from tandem.classifier.collected import Featurizer, read_collected

    header, _ = read_collected(
        Path(__file__).resolve().parents[3] / "models/classifier/data/lab-v3-ages.jsonl"
    )
    assert Featurizer.of(INSIGHT_SPAN, header).suffix_tokens == 4
    with pytest.raises(ValueError, match="prompt layout"):
        Featurizer.of(INSIGHT_SPAN, replace(header, prompt_version="chatml-v1"))
    with pytest.raises(ValueError, match="starts at 0"):
        Featurizer.of(INSIGHT_SPAN, replace(header, levels=(7, 12, 17)))
    # The whole-prompt set needs neither.
    assert (
        Featurizer.of(PROMPT_STATS, replace(header, prompt_version="chatml-v1")).suffix_tokens == 0
    )
