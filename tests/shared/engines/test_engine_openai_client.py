"""The OpenAI-compatible adapter over real HTTP against the local server's vLLM-style routes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from services.engine.backends.sim import sim_tokens
from shared.engines import EngineConfig, EngineError, TransientEngineError, check_engine
from shared.engines.base import ModelProfile
from shared.engines.openai_compat import OpenAICompatClient
from shared.engines.retry import RetryPolicy
from shared.engines.role_settings import EngineKind
from shared.engines.tgi import TGIClient

QUESTION = "Question: What is (4 + 5) * 6?\n\n"


def config(
    url: str, *, mode: str = "echo", name: str = "sim-executor", **kw: object
) -> EngineConfig:
    return EngineConfig(
        url=url,
        kind=EngineKind.OPENAI,
        profile=ModelProfile(name=name, parameters=1000),
        retry=RetryPolicy(attempts=3, backoff_s=0.01, backoff_max_s=0.05),
        openai_prompt_logprobs=mode,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
async def client(sim_url: str) -> AsyncIterator[OpenAICompatClient]:
    openai_client = OpenAICompatClient(config(sim_url))
    yield openai_client
    await openai_client.aclose()


async def test_generate_counts_and_finish_reasons(client: OpenAICompatClient) -> None:
    done = await client.generate(QUESTION, max_new_tokens=200)
    assert done.finish_reason == "eos_token" and "\\boxed{" in done.text
    assert done.prompt_tokens == len(sim_tokens(QUESTION))
    short = await client.generate(QUESTION, max_new_tokens=4, details=True)
    assert (short.finish_reason, short.generated_tokens) == ("length", 4)
    assert [t.text for t in short.token_logprobs] == sim_tokens(short.text)


async def test_stop_sequence_is_kept_as_tgi_does(client: OpenAICompatClient) -> None:
    result = await client.generate(QUESTION, max_new_tokens=50, stop=["through"])
    assert result.finish_reason == "stop_sequence"
    assert result.text == "Let me work through"


@pytest.mark.parametrize("mode", ["echo", "vllm"])
async def test_prompt_logprobs_match_the_tgi_prefill(sim_url: str, mode: str) -> None:
    prompt = QUESTION + "Goal: find the exact value of (4 + 5) * 6."
    openai_client = OpenAICompatClient(config(sim_url, mode=mode))
    tgi = TGIClient(EngineConfig(url=sim_url, profile=ModelProfile("sim-executor", 1000)))
    ours, theirs = await openai_client.prompt_logprobs(prompt), await tgi.prompt_logprobs(prompt)
    assert ours.prompt_tokens == theirs.prompt_tokens == len(ours.prompt_logprobs)
    assert [t.logprob for t in ours.prompt_logprobs] == pytest.approx(
        [t.logprob for t in theirs.prompt_logprobs]
    )
    assert ours.prompt_logprobs[0].logprob is None
    await openai_client.aclose()
    await tgi.aclose()


async def test_stream(client: OpenAICompatClient) -> None:
    chunks = [c async for c in client.generate_stream(QUESTION, max_new_tokens=8, stop=[" step"])]
    final = chunks[-1].final
    assert final is not None
    assert "".join(c.text for c in chunks) == final.text == "Let me work through this step"
    assert final.finish_reason == "stop_sequence"
    assert final.prompt_tokens == len(sim_tokens(QUESTION))


async def test_info_and_model_check(client: OpenAICompatClient, sim_url: str) -> None:
    info = await check_engine(client)
    assert info.model_id == "sim-executor" and info.max_total_tokens == 6144
    assert await client.health()
    other = OpenAICompatClient(config(sim_url, name="Qwen/Qwen2.5-7B"))
    with pytest.raises(EngineError) as caught:  # vLLM answers 404 for an unknown model
        await other.generate(QUESTION, max_new_tokens=2)
    assert caught.value.status == 404 and not isinstance(caught.value, TransientEngineError)
    await other.aclose()


async def test_transient_status_retried(sim_url: str) -> None:
    key = uuid.uuid4().hex
    flaky = OpenAICompatClient(
        config(sim_url, headers={"X-Sim-Fault": f"status=503;times=2;key={key}"})
    )
    assert (await flaky.generate(QUESTION, max_new_tokens=2)).generated_tokens == 2
    await flaky.aclose()
    down = OpenAICompatClient(
        config(sim_url, headers={"X-Sim-Fault": f"status=429;times=9;key={key}x"})
    )
    with pytest.raises(TransientEngineError) as caught:
        await down.generate(QUESTION, max_new_tokens=2)
    assert caught.value.status == 429 and caught.value.details["attempts"] == 3
    await down.aclose()
