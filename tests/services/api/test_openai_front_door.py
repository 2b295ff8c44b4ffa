"""The OpenAI-compatible front door, driven by the official ``openai`` package.

No pipeline runs here: a thread completes each queued job through the same public functions
the pipeline uses (model calls, outcome, then ``shared.budgets.settle``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from decimal import Decimal

import openai
import pytest
from sqlalchemy import select

from shared.db.models import Job, JobStatus
from shared.db.session import unit_of_work
from tests.services.api.conftest import TenantHandle, finish_job

Make = Callable[..., TenantHandle]


@pytest.fixture
def completer() -> Iterator[dict[str, JobStatus]]:
    """Finishes every queued job of the tenants registered in the returned dict."""
    outcome: dict[str, JobStatus] = {}
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(0.1):
            with unit_of_work() as session:
                queued = session.execute(
                    select(Job.id, Job.tenant_id, Job.question).where(
                        Job.status == JobStatus.QUEUED.value
                    )
                ).all()
            for job_id, tenant_id, question in queued:
                status = outcome.get(str(tenant_id))
                if status is not None:
                    finish_job(job_id, answer=f"answer to: {question}", status=status)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield outcome
    stop.set()
    thread.join(timeout=5)


def client_for(tenant: TenantHandle) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{tenant.client.base_url}/v1", api_key=tenant.key, max_retries=0)


def test_chat_completion_with_the_openai_sdk(
    make_tenant: Make, completer: dict[str, JobStatus]
) -> None:
    tenant = make_tenant()
    completer[str(tenant.id)] = JobStatus.SUCCEEDED
    completion = client_for(tenant).chat.completions.create(
        model="tandem",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is 6*7?"},
        ],
        max_tokens=64,
        extra_body={"domain": "math"},
    )
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == "answer to: system: Be brief.\nWhat is 6*7?"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (90, 25)
    assert completion.usage.total_tokens == 115
    job_id = completion.model_extra["tandem"]["job_id"]  # type: ignore[index]
    job = tenant.client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded" and job["domain"] == "math"
    assert job["max_answer_tokens"] == 64
    assert Decimal(job["cost"]) == Decimal("0.00011")


def test_openai_errors_keep_their_meaning(
    make_tenant: Make, completer: dict[str, JobStatus]
) -> None:
    tenant = make_tenant(budget_cap="0.000001")
    client = client_for(tenant)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.APIStatusError) as refused:
        client.chat.completions.create(model="tandem", messages=[{"role": "user", "content": "x"}])
    assert refused.value.status_code == 402
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(
            base_url=f"{tenant.client.base_url}/v1", api_key="tdm_wrong", max_retries=0
        ).chat.completions.create(model="tandem", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(
            model="tandem", messages=[{"role": "assistant", "content": "no user turn"}]
        )


def test_failed_job_is_a_502(make_tenant: Make, completer: dict[str, JobStatus]) -> None:
    tenant = make_tenant()
    completer[str(tenant.id)] = JobStatus.FAILED
    with pytest.raises(openai.APIStatusError) as failed:
        client_for(tenant).chat.completions.create(
            model="tandem-slm_only", messages=[{"role": "user", "content": "x"}]
        )
    assert failed.value.status_code == 502
