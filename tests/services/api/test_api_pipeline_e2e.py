"""The API in front of the real pipeline: ``tandem worker`` processes and sim engine servers.

The OpenAI SDK's chat completion, a job's SSE stream and its settlement all come from real
workers here, not from a test thread.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest

from services.api.app import create_app
from services.api.settings import ApiSettings
from shared.budgets import verify_ledger
from shared.classifier import SIM_MODEL_PATH, register_version
from shared.db.session import unit_of_work
from shared.settings import DEV_ADMIN_KEY
from tests.conftest import start_workers, stop_workers, wait_for_workers
from tests.services.api.conftest import ServerThread
from tests.services.api.jobs.test_events_and_webhooks import read_sse
from tests.services.pipeline.support import sim_engines

pytestmark = pytest.mark.e2e
SERVICES = ["coordinator", "scorer", "executor", "accounting"]


@contextmanager
def serving_pipeline(
    logs: Path,
    api_settings: ApiSettings,
    redis_url: str,
    services: list[str] = SERVICES,
    **sim: str,
) -> Iterator[str]:
    """Sim engines (``sim``: their TANDEM_ENGINE_SIM_* knobs), ``services``' workers, and an
    API that publishes where those workers listen; yields the API's URL."""
    with sim_engines(logs, **sim) as engines:
        saved = dict(os.environ)
        os.environ.update(engines.env())  # the API prices plans with these profiles
        pool = start_workers(services, logs, engines.env())
        try:
            wait_for_workers(services, timeout_s=120)
            with unit_of_work() as session:  # stop at level 0: the executor answers at once
                register_version(
                    session,
                    SIM_MODEL_PATH,
                    version=f"api-{uuid.uuid4().hex[:8]}",
                    thresholds=[0.0],
                )
            settings = api_settings.model_copy(update={"redis_url": redis_url})
            with ServerThread(create_app(settings)) as server:
                yield server.url
        finally:
            stop_workers(pool)
            os.environ.clear()
            os.environ.update(saved)


@pytest.fixture(scope="module")
def live_api(
    artifacts_dir: Path, database_url: str, redis_url: str, api_settings: ApiSettings
) -> Iterator[str]:
    """Engines, workers, and an API that publishes where those workers listen."""
    with serving_pipeline(artifacts_dir / "api-pipeline-e2e", api_settings, redis_url) as url:
        yield url


def tenant_key(url: str) -> str:
    admin = httpx.Client(base_url=url, headers={"X-Admin-Key": DEV_ADMIN_KEY})
    tenant = admin.post(
        "/v1/admin/tenants", json={"name": f"e2e-{uuid.uuid4().hex[:8]}", "budget_cap": "10"}
    ).json()
    key: str = admin.post(f"/v1/admin/tenants/{tenant['id']}/keys", json={}).json()["key"]
    admin.close()
    return key


def test_openai_sdk_against_the_real_pipeline(live_api: str) -> None:
    key = tenant_key(live_api)
    client = openai.OpenAI(base_url=f"{live_api}/v1", api_key=key, max_retries=0, timeout=120)
    completion = client.chat.completions.create(
        model="tandem",
        messages=[{"role": "user", "content": "What is 12 + 30?"}],
        extra_body={"domain": "math"},
    )
    assert completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    job_id = completion.model_extra["tandem"]["job_id"]  # type: ignore[index]
    jobs = httpx.Client(base_url=live_api, headers={"Authorization": f"Bearer {key}"})
    job = jobs.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded" and job["answer"] == completion.choices[0].message.content
    assert {u["role"] for u in job["usage"]} >= {"executor"}
    assert 0 < Decimal(job["cost"]) <= Decimal(job["reserved"])
    with jobs.stream("GET", f"/v1/jobs/{job_id}/events") as response:
        kinds = [event for _, event, _ in read_sse(response)]
    assert kinds[0] == "submitted" and kinds[-1] == "done"
    assert len(kinds) > 2
    with unit_of_work() as session:
        assert verify_ledger(session) == []


def test_submitted_job_runs_to_completion(live_api: str) -> None:
    jobs = httpx.Client(
        base_url=live_api, headers={"Authorization": f"Bearer {tenant_key(live_api)}"}
    )
    accepted = jobs.post("/v1/jobs", json={"question": "Name a prime.", "domain": "general"})
    assert accepted.status_code == 202
    with jobs.stream("GET", accepted.json()["url"] + "/events", timeout=120) as response:
        messages = list(read_sse(response))
    assert json.loads(messages[-1][2]) == {"status": "succeeded"}
    assert jobs.get(accepted.json()["url"]).json()["answer"]
