"""One job through every service on real models, CPU: the bundled small models (Gemma 3 270M
coordinator, SmolLM2-135M executor), kept tiny (one 16-token insight level and a 24-token
answer), and the lab pair trained by `tandem lab`, prompted in its own layout."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.celery_base import producer_app
from shared.classifier import DEFAULT_MODEL_PATH, LAB_MODEL_PATH, register_version
from shared.db.models import Job, ModelCall
from shared.db.session import unit_of_work
from shared.jobs import repository as repo
from shared.prompts import LAB_MODEL_PREFIX
from tandem.datasets import Split, generate
from tandem.lab.configs import MODELS_DIR as LAB_MODELS_DIR
from tandem.lab.configs import SEED
from tandem.stack.stack import lab_engine_env
from tests.conftest import start_workers, stop_workers, wait_for_workers
from tests.services.pipeline.support import local_engines, make_tenant, submit, wait_terminal

pytestmark = [pytest.mark.e2e, pytest.mark.real_model]

SERVICES = ["coordinator", "scorer", "executor", "accounting"]


@pytest.fixture
def real_env(artifacts_dir: Path, database_url: str, redis_url: str) -> Iterator[dict[str, str]]:
    logs = artifacts_dir / "pipeline-real"
    with local_engines(
        logs,
        backend="gguf",
        coordinator="gemma3-270m",
        executor="smollm2-135m",
        start_timeout_s=600,
    ) as engines:
        yield engines.env()


def one_job(
    env: dict[str, str], logs: Path, classifier: Path, question: str, **submitted: Any
) -> tuple[Job, list[ModelCall]]:
    """One job through real workers on ``env``'s engines, continuing at level 0 and stopping at
    level 1 (thresholds [1.01, 0.0] on ``classifier``); the finished job and its model calls."""
    import os

    os.environ.update(env)
    with unit_of_work() as session:
        register_version(session, classifier, version=f"e2e-{logs.name}", thresholds=[1.01, 0.0])
    pool = start_workers(SERVICES, logs, env)
    app = producer_app()
    try:
        wait_for_workers(SERVICES, timeout_s=120)
        job_id = submit(app, make_tenant(), question, levels=(0, 16), **submitted)
        job = wait_terminal(job_id, timeout_s=600)
    finally:
        app.close()
        stop_workers(pool)
    with unit_of_work() as session:
        return job, repo.calls(session, job_id)


def test_real_models_job_through_every_service(
    real_env: dict[str, str], artifacts_dir: Path
) -> None:
    logs = artifacts_dir / "pipeline-real"
    job, calls = one_job(
        real_env, logs, DEFAULT_MODEL_PATH, "What is 12 + 30?", max_answer_tokens=24
    )
    assert job.status == "succeeded", job.error_message
    assert (job.truncation_level, job.termination_reason) == (1, "sufficient")
    assert 0 < job.insight_tokens <= 16
    assert [c.step for c in calls] == ["score:0", "insights:1", "score:1", "answer"]
    assert {c.model for c in calls} == {"gemma3-270m", "smollm2-135m"}
    assert all(c.prompt_tokens > 0 for c in calls)
    assert job.cost == sum(c.cost for c in calls) > 0


@pytest.fixture
def lab_env(artifacts_dir: Path, database_url: str, redis_url: str) -> Iterator[dict[str, str]]:
    with local_engines(
        artifacts_dir / "pipeline-lab",
        backend="gguf",
        coordinator=str(LAB_MODELS_DIR / "coordinator"),
        executor=str(LAB_MODELS_DIR / "executor"),
        model_ids=(f"{LAB_MODEL_PREFIX}-coordinator", f"{LAB_MODEL_PREFIX}-executor"),
    ) as engines:
        yield {**engines.env(), **lab_engine_env("lab")}


def test_lab_pair_job_through_every_service(lab_env: dict[str, str], artifacts_dir: Path) -> None:
    question = generate("catalog", Split.TEST, 1, seed=SEED)[0].question
    job, calls = one_job(lab_env, artifacts_dir / "pipeline-lab", LAB_MODEL_PATH, question)
    assert job.status == "succeeded", job.error_message
    assert (job.truncation_level, job.termination_reason) == (1, "sufficient")
    # The coordinator wrote the prices first, in the lab layout, and stopped at its budget.
    assert job.insights.lstrip().startswith("Retrieval:") and job.insight_tokens == 16
    assert job.answer is not None and job.answer.isdigit()
    assert {c.model for c in calls} == {
        f"{LAB_MODEL_PREFIX}-coordinator",
        f"{LAB_MODEL_PREFIX}-executor",
    }
    assert job.cost == sum(c.cost for c in calls) > 0
