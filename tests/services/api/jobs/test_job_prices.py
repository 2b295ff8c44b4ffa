"""A job is charged at the prices it was admitted under: admitted through the real API, run by
the executor's step against the simulator (which reports prompt tokens served from its prefix
cache), settled by accounting, while the price table changes in between."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.accounting import service as accounting
from services.api.app import create_app
from services.api.settings import ApiSettings
from services.executor import service as executor
from shared.db.models import Job, ModelCall
from shared.db.session import unit_of_work
from tests.services.api.conftest import ServerThread, TenantHandle
from tests.services.pipeline.support import LocalEngines, local_engines

MILLION = Decimal(1_000_000)


@pytest.fixture(scope="module")
def engines(database_url: str, artifacts_dir: Path) -> Iterator[LocalEngines]:
    """The simulator pair under model ids of this module's own, which no other test prices;
    this process (the steps run here) is configured with them."""
    tag = uuid.uuid4().hex[:8]
    ids = (f"llm-{tag}", f"slm-{tag}")
    with (
        local_engines(artifacts_dir / "prices-sim", model_ids=ids) as running,
        pytest.MonkeyPatch.context() as env,
    ):
        for name, value in running.env().items():
            env.setenv(name, value)
        yield running


@pytest.fixture(scope="module")
def server(engines: LocalEngines, api_settings: ApiSettings) -> Iterator[ServerThread]:
    """An API of the module's own (the ``admin`` and ``make_tenant`` clients talk to it): an
    API process reads which models it serves once, so the session's cannot be re-pointed."""
    with ServerThread(create_app(api_settings)) as running:
        yield running


def post_price(admin: httpx.Client, model: str, prompt: str, generated: str, cached: str) -> str:
    body = {
        "model": model,
        "prompt_per_mtok": prompt,
        "generated_per_mtok": generated,
        "cached_prompt_per_mtok": cached,
    }
    response = admin.post("/v1/admin/prices", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def submit(tenant: TenantHandle, question: str) -> uuid.UUID:
    response = tenant.client.post(
        "/v1/jobs",
        json={
            "question": question,
            "domain": "math",
            "policy": "slm_only",
            "max_answer_tokens": 32,
        },
    )
    assert response.status_code == 202, response.text
    return uuid.UUID(response.json()["id"])


def run_and_settle(job_id: uuid.UUID) -> tuple[ModelCall, Job]:
    executor.execute(job_id)
    accounting.settle_job(job_id)
    with unit_of_work() as session:
        call = session.scalars(select(ModelCall).where(ModelCall.job_id == job_id)).one()
        job = session.get(Job, job_id)
        assert job is not None
        return call, job


def charged(call: ModelCall, prompt: str, generated: str, cached: str) -> Decimal:
    fresh = call.prompt_tokens - call.cached_tokens
    return (
        fresh * Decimal(prompt)
        + call.cached_tokens * Decimal(cached)
        + call.generated_tokens * Decimal(generated)
    ) / MILLION


def test_a_price_change_after_admission_leaves_the_jobs_cost_alone(
    engines: LocalEngines, admin: httpx.Client, make_tenant: Callable[..., TenantHandle]
) -> None:
    model = engines.executor_model
    first = post_price(admin, model, "1", "2", "0.25")
    tenant = make_tenant()
    job_id = submit(tenant, f"What is 6 * 7? ({uuid.uuid4().hex})")
    with unit_of_work() as session:
        kept: dict[str, Any] | None = session.get(Job, job_id).prices  # type: ignore[union-attr]
    assert kept is not None
    assert kept["executor"] == {
        "model": model,
        "price_id": first,
        "prompt": "1",
        "generated": "2",
        "cached_prompt": "0.25",
    }
    post_price(admin, model, "100", "200", "50")  # in force before the job runs
    call, job = run_and_settle(job_id)
    assert call.model == model and call.generated_tokens > 0
    assert call.cost == charged(call, "1", "2", "0.25")
    assert call.cost != charged(call, "100", "200", "50")
    assert job.cost == call.cost  # settled (and rolled up) at the job's own prices
    # A job admitted now snapshots the new price.
    later = submit(tenant, f"What is 7 * 8? ({uuid.uuid4().hex})")
    with unit_of_work() as session:
        assert session.get(Job, later).prices["executor"]["prompt"] == "100"  # type: ignore[union-attr,index]


def test_prompt_tokens_from_the_engines_prefix_cache_cost_the_cached_price(
    engines: LocalEngines, admin: httpx.Client, make_tenant: Callable[..., TenantHandle]
) -> None:
    model = engines.executor_model
    post_price(admin, model, "4", "8", "1")
    tenant = make_tenant()
    question = f"What is 12 squared? ({uuid.uuid4().hex})"
    cold, _ = run_and_settle(submit(tenant, question))
    warm, _ = run_and_settle(submit(tenant, question))  # the same prompt: served from cache
    # The template's opening is shared with earlier jobs' prompts; the repeat shares it all.
    assert cold.cached_tokens < warm.cached_tokens <= warm.prompt_tokens
    assert cold.cost == charged(cold, "4", "8", "1")
    assert warm.cost == charged(warm, "4", "8", "1")
    assert warm.cost < charged(warm, "4", "8", "4")
