"""The scorer serves the stop rule its active version declares, by the function the offline
replay runs: a lookahead version decides by its own predictions, and the decision recorded is
the one ``decide_with`` gives for the recorded score."""

from __future__ import annotations

import math
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from services.scorer import service as scorer
from shared.classifier import SIM_MODEL_PATH, read_metadata, register_version
from shared.classifier.rules import Logistic, LookaheadRule, decide_with
from shared.db.models import ClassifierModel
from shared.db.session import unit_of_work
from shared.features import FEATURE_NAMES
from shared.jobs.flow import NextTask
from shared.tasks import TaskName
from tandem.classifier import policies
from tandem.classifier.model_files import set_metadata
from tests.services.pipeline.support import LEVELS, job_row, make_tenant, submit

PREFIX = "rule-"
QUESTION = "What is 9 * 9 - 1?"

pytestmark = pytest.mark.usefixtures("database_url")  # the per-process test database


def constant(probability: float) -> Logistic:
    width = len(FEATURE_NAMES)
    return Logistic(
        (0.0,) * width, (1.0,) * width, (0.0,) * width, math.log(probability / (1 - probability))
    )


def lookahead(gain: float) -> LookaheadRule:
    """Every later level adds ``gain`` to P(right); the levels cost 0.1 apart."""
    models = {
        (now, later): constant(0.2 + (gain if later > now else 0.0))
        for i, now in enumerate(LEVELS)
        for later in LEVELS[i:]
    }
    costs = {b: 0.1 * (i + 1) for i, b in enumerate(LEVELS)}
    return LookaheadRule(lam=1.0, costs=costs, models=models)


def activate(rule: LookaheadRule, folder: Path) -> str:
    version = f"{PREFIX}{uuid.uuid4().hex[:8]}"
    model = folder / f"{version}.onnx"
    shutil.copy(SIM_MODEL_PATH, model)
    shutil.copy(SIM_MODEL_PATH.with_suffix(".json"), model.with_suffix(".json"))
    set_metadata(model, levels=list(LEVELS), stop_rule=rule.to_json())
    with unit_of_work() as session:
        register_version(session, model, version=version)
    scorer.runtime().forget_active()
    return version


@pytest.fixture(autouse=True)
def none_left_active() -> Iterator[None]:
    yield
    with unit_of_work() as session:
        session.execute(
            update(ClassifierModel)
            .where(ClassifierModel.version.startswith(PREFIX))
            .values(active=False)
        )
    scorer.runtime().forget_active()


def test_the_scorer_and_the_replay_decide_by_the_same_function() -> None:
    assert vars(scorer)["decide_with"] is vars(policies)["decide_with"] is decide_with


@pytest.mark.usefixtures("sim_env")
@pytest.mark.parametrize(("gain", "stops"), [(0.5, False), (0.05, True)])
def test_a_lookahead_version_decides_by_its_own_predictions(
    gain: float, stops: bool, tmp_path: Path
) -> None:
    rule = lookahead(gain)  # going on is worth 0.1 · λ per level: 0.5 is, 0.05 is not
    version = activate(rule, tmp_path)
    assert read_metadata(tmp_path / f"{version}.onnx").stop_rule == rule.to_json()
    job_id = submit(None, make_tenant(), QUESTION, levels=LEVELS, start=False)
    following = scorer.score(job_id, 0)
    job = job_row(job_id)
    (entry,) = job.scores
    assert (entry["rule"], entry["threshold"], job.classifier_version) == (
        "lookahead",
        None,
        version,
    )
    # The replay's decision for the recorded score (the rule reads no feature here).
    replayed = decide_with(
        rule,
        [entry["score"]],
        [0.0] * len(FEATURE_NAMES),
        LEVELS,
        insights_finished=False,
        next_affordable=True,
    )
    assert replayed.stop is stops and entry["decision"] == ("stop" if stops else "continue")
    if stops:
        assert following == [NextTask(TaskName.EXECUTOR_EXECUTE, {"job_id": str(job_id)})]
        assert (job.termination_reason, job.truncation_level) == ("sufficient", 0)
    else:
        assert following == [
            NextTask(TaskName.COORDINATOR_EXTEND, {"job_id": str(job_id), "level": 1})
        ]
