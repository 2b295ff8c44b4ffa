"""One job through every service on the bundled real small models (Gemma 3 270M coordinator,
SmolLM2-135M executor, CPU), kept tiny: one 16-token insight level and a 24-token answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.celery_base import producer_app
from shared.classifier import DEFAULT_MODEL_PATH, register_version
from shared.db.session import unit_of_work
from shared.jobs import repository as repo
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


def test_real_models_job_through_every_service(
    real_env: dict[str, str], artifacts_dir: Path
) -> None:
    import os

    os.environ.update(real_env)
    with unit_of_work() as session:  # continue at level 0, stop at level 1
        register_version(session, DEFAULT_MODEL_PATH, version="real-e2e", thresholds=[1.01, 0.0])
    pool = start_workers(SERVICES, artifacts_dir / "pipeline-real", real_env)
    app = producer_app()
    try:
        wait_for_workers(SERVICES, timeout_s=120)
        job_id = submit(
            app, make_tenant(), "What is 12 + 30?", levels=(0, 16), max_answer_tokens=24
        )
        job = wait_terminal(job_id, timeout_s=600)
    finally:
        app.close()
        stop_workers(pool)
    assert job.status == "succeeded", job.error_message
    assert (job.truncation_level, job.termination_reason) == (1, "sufficient")
    assert 0 < job.insight_tokens <= 16
    with unit_of_work() as session:
        calls = repo.calls(session, job_id)
    assert [c.step for c in calls] == ["score:0", "insights:1", "score:1", "answer"]
    assert {c.model for c in calls} == {"gemma3-270m", "smollm2-135m"}
    assert all(c.prompt_tokens > 0 for c in calls)
    assert job.cost == sum(c.cost for c in calls) > 0
