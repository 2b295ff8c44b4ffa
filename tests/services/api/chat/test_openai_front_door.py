"""The OpenAI-compatible front door, driven by the official ``openai`` package: sync, async,
streaming, ``client.models``, and each error class the SDK raises.

No pipeline runs here: the ``completer`` fixture (conftest) plays the executor and accounting
through the same public functions they use.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from decimal import Decimal

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from shared.db.models import Job, JobStatus
from shared.db.session import unit_of_work
from tests.services.api.chat.conftest import Outcome
from tests.services.api.conftest import TenantHandle

Make = Callable[..., TenantHandle]
USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What is 6*7?"}]


def client_for(tenant: TenantHandle, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{tenant.client.base_url}/v1", api_key=key or tenant.key, max_retries=0
    )


def async_client_for(tenant: TenantHandle) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=f"{tenant.client.base_url}/v1", api_key=tenant.key, max_retries=0
    )


def job_status(job_id: str) -> str:
    with unit_of_work() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job.status


def test_chat_completion_with_the_openai_sdk(
    make_tenant: Make, completer: dict[str, Outcome]
) -> None:
    tenant = make_tenant()
    completer[str(tenant.id)] = Outcome()
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
    tandem = completion.model_extra["tandem"]  # type: ignore[index]
    assert tandem["cost"] == "0.00011"  # plain decimal, never 1.1E-4
    job = tenant.client.get(f"/v1/jobs/{tandem['job_id']}").json()
    assert job["status"] == "succeeded" and job["domain"] == "math"
    assert job["max_answer_tokens"] == 64
    assert job["cost"] == "0.00011" and "E" not in job["reserved"]


def test_async_client(make_tenant: Make, completer: dict[str, Outcome]) -> None:
    tenant = make_tenant()
    completer[str(tenant.id)] = Outcome()

    async def ask() -> list[str]:
        async with async_client_for(tenant) as client:
            completions = await asyncio.gather(
                *(
                    client.chat.completions.create(
                        model="tandem-slm_only", messages=[{"role": "user", "content": f"q{i}"}]
                    )
                    for i in range(3)
                )
            )
        return [str(c.choices[0].message.content) for c in completions]

    assert sorted(asyncio.run(ask())) == ["answer to: q0", "answer to: q1", "answer to: q2"]


def test_stream_follows_the_job(make_tenant: Make, completer: dict[str, Outcome]) -> None:
    """The answer arrives as soon as the executor wrote it, while the job is still running;
    the finish chunk and the usage chunk come once it is over."""
    tenant = make_tenant()
    gate = threading.Event()
    completer[str(tenant.id)] = Outcome(gate=gate)
    stream = client_for(tenant).chat.completions.create(
        model="tandem", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = iter(stream)
    first = next(chunks)
    assert first.object == "chat.completion.chunk"
    assert first.choices[0].delta.role == "assistant" and first.usage is None
    job_id = first.model_extra["tandem"]["job_id"]  # type: ignore[index]
    content = next(chunks)
    assert content.choices[0].delta.content == "answer to: What is 6*7?"
    assert content.id == first.id
    assert job_status(job_id) == JobStatus.EXECUTING.value  # streamed before the job ended
    gate.set()
    rest = list(chunks)
    finish, usage = rest
    assert finish.choices[0].finish_reason == "stop" and finish.choices[0].delta.content is None
    assert finish.model_extra["tandem"]["cost"] == "0.00011"  # type: ignore[index]
    assert usage.choices == [] and usage.usage is not None
    assert (usage.usage.prompt_tokens, usage.usage.completion_tokens) == (90, 25)
    assert job_status(job_id) == JobStatus.SUCCEEDED.value


def test_async_stream_without_usage(make_tenant: Make, completer: dict[str, Outcome]) -> None:
    tenant = make_tenant()
    completer[str(tenant.id)] = Outcome(finish_reason="length")

    async def read() -> list[openai.types.chat.ChatCompletionChunk]:
        async with async_client_for(tenant) as client:
            stream = await client.chat.completions.create(
                model="tandem-llm_only", messages=USER, stream=True
            )
            return [chunk async for chunk in stream]

    chunks = asyncio.run(read())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "answer to: What is 6*7?"
    assert chunks[-1].choices[0].finish_reason == "length"
    assert all(c.usage is None for c in chunks)


def test_stream_as_raw_server_sent_events(make_tenant: Make, completer: dict[str, Outcome]) -> None:
    """What a client without the SDK sees: data-only messages ending with [DONE]."""
    tenant = make_tenant()
    completer[str(tenant.id)] = Outcome()
    request = {"model": "tandem", "messages": USER, "stream": True}
    with tenant.client.stream("POST", "/v1/chat/completions", json=request) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = list(response.iter_lines())
    data = [line[6:] for line in lines if line.startswith("data: ")]
    assert data[-1] == "[DONE]" and not [line for line in lines if line.startswith("event:")]
    assert len(data) == 4  # role, content, finish, [DONE]


def test_failed_job_mid_stream_raises(make_tenant: Make, completer: dict[str, Outcome]) -> None:
    tenant = make_tenant()
    completer[str(tenant.id)] = Outcome(status=JobStatus.FAILED)
    stream = client_for(tenant).chat.completions.create(model="tandem", messages=USER, stream=True)
    with pytest.raises(openai.APIError) as failed:
        list(stream)
    assert failed.value.code == "job_failed" and failed.value.type == "server_error"


def test_leaving_a_stream_cancels_its_job(make_tenant: Make) -> None:
    tenant = make_tenant()  # no completer: the job stays queued
    request = {"model": "tandem", "messages": USER, "stream": True}
    with tenant.client.stream("POST", "/v1/chat/completions", json=request) as response:
        first = next(line for line in response.iter_lines() if line.startswith("data: "))
    job_id = first.split('"job_id":"')[1].split('"')[0]
    deadline = time.monotonic() + 10
    while job_status(job_id) != JobStatus.CANCELLED.value and time.monotonic() < deadline:
        time.sleep(0.1)
    assert job_status(job_id) == JobStatus.CANCELLED.value


def test_models_list_and_retrieve(make_tenant: Make) -> None:
    client = client_for(make_tenant())
    models = client.models.list()
    assert [m.id for m in models] == ["tandem", "tandem-llm_only", "tandem-slm_only"]
    assert all(m.object == "model" and m.owned_by == "tandem" and m.created for m in models)
    model = client.models.retrieve("tandem-llm_only")
    assert model.model_extra["tandem"]["policy"] == "llm_only"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("gpt-4o")
    assert (missing.value.code, missing.value.param) == ("model_not_found", "model")
    with pytest.raises(openai.AuthenticationError):
        client_for(make_tenant(), key="tdm_wrong").models.list()


def test_each_error_class(make_tenant: Make, completer: dict[str, Outcome]) -> None:
    tenant = make_tenant()
    completer[str(tenant.id)] = Outcome()
    client = client_for(tenant)
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-4o", messages=USER)
    assert (missing.value.code, missing.value.param) == ("model_not_found", "model")
    assert missing.value.type == "invalid_request_error"
    with pytest.raises(openai.AuthenticationError) as unauthorized:
        client_for(tenant, key="tdm_wrong").chat.completions.create(model="tandem", messages=USER)
    assert unauthorized.value.code == "invalid_api_key"
    with pytest.raises(openai.BadRequestError) as invalid:
        client.chat.completions.create(
            model="tandem", messages=[{"role": "assistant", "content": "no user turn"}]
        )
    assert (invalid.value.code, invalid.value.param) == ("invalid_request", "messages")
    with pytest.raises(openai.BadRequestError) as schema:
        client.chat.completions.create(model="tandem", messages=[])
    assert schema.value.param == "messages"
    with pytest.raises(openai.BadRequestError) as choices:  # not silently one choice
        client.chat.completions.create(model="tandem", messages=USER, n=3)
    assert choices.value.param == "n"
    with pytest.raises(openai.BadRequestError) as flag:  # not read as one token
        client.chat.completions.create(model="tandem", messages=USER, max_tokens=True)
    assert flag.value.param == "max_tokens"
    with pytest.raises(openai.BadRequestError) as places:  # would be stored as 0
        client.chat.completions.create(
            model="tandem", messages=USER, extra_body={"max_cost": "0.0000000000001"}
        )
    assert places.value.param == "max_cost"
    for text in (None, 5):  # not asked as the question "None" or "5"
        part = {"type": "text", "text": text}
        raw = tenant.client.post(
            "/v1/chat/completions",
            json={"model": "tandem", "messages": [{"role": "user", "content": [part]}]},
        )
        assert raw.status_code == 400, raw.text
        assert raw.json()["error"]["param"] == "messages.0.content"
    with pytest.raises(openai.BadRequestError) as too_long:
        client.chat.completions.create(
            model="tandem", messages=[{"role": "user", "content": "x" * 20_000}]
        )
    assert too_long.value.code == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as too_big:  # refused before the body is read
        client.chat.completions.create(
            model="tandem", messages=[{"role": "user", "content": "x" * 1_100_000}]
        )
    assert too_big.value.code == "context_length_exceeded"
    with pytest.raises(openai.ConflictError) as conflict:
        for question in ("a", "b"):
            client.chat.completions.create(
                model="tandem",
                messages=[{"role": "user", "content": question}],
                extra_headers={"Idempotency-Key": "chat-conflict"},
            )
    assert conflict.value.code == "idempotency_key_reused"
    assert conflict.value.response.headers["x-should-retry"] == "false"


def test_budget_exhausted_is_openai_quota_error(make_tenant: Make) -> None:
    tenant = make_tenant(budget_cap="0.0000001")
    client = openai.OpenAI(base_url=f"{tenant.client.base_url}/v1", api_key=tenant.key)
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="tandem", messages=USER)
    assert time.monotonic() - started < 2  # the SDK's retries were told not to
    error = refused.value
    assert (error.status_code, error.code, error.type) == (
        429,
        "insufficient_quota",
        "insufficient_quota",
    )
    assert error.response.headers["x-should-retry"] == "false"
    body = error.body
    assert isinstance(body, dict)
    assert (body["cap"], body["spent"], body["reserved"]) == ("0.0000001", "0", "0")
    assert "cap 0.0000001, spent 0, reserved 0" in error.message
    assert Decimal(body["requested"]) > Decimal(body["cap"])
    assert "E" not in body["requested"]


def test_rate_limit_is_openai_rate_limit_error(make_tenant: Make) -> None:
    tenant = make_tenant(rate_limit_rpm=1)
    client = client_for(tenant)
    client.models.list()
    with pytest.raises(openai.RateLimitError) as limited:
        client.models.list()
    assert limited.value.code == "rate_limit_exceeded" and limited.value.type == "requests"
    assert int(limited.value.response.headers["retry-after"]) > 0


def test_failed_job_is_an_internal_server_error(
    make_tenant: Make, completer: dict[str, Outcome]
) -> None:
    tenant = make_tenant()
    completer[str(tenant.id)] = Outcome(status=JobStatus.FAILED)
    with pytest.raises(openai.InternalServerError) as failed:
        openai.OpenAI(
            base_url=f"{tenant.client.base_url}/v1", api_key=tenant.key
        ).chat.completions.create(model="tandem-slm_only", messages=USER)
    assert failed.value.status_code == 502 and failed.value.code == "job_failed"
    # x-should-retry: false kept the SDK from running (and charging) two more jobs.
    jobs = tenant.client.get("/v1/jobs").json()["data"]
    assert len(jobs) == 1


def test_tandem_routes_keep_their_own_error_shape(make_tenant: Make) -> None:
    response = make_tenant().client.post("/v1/jobs", json={"domain": "math"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
    assert "type" not in response.json()["error"]
    assert httpx.codes.is_error(response.status_code)
