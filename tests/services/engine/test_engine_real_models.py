"""The bundled real models, through the project's client and in-process. Small and few tokens."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from services.engine.backends.model_store import BUNDLED
from services.engine.settings import EngineServerSettings
from shared.engines import EngineConfig, check_engine
from shared.engines.base import ModelProfile
from shared.engines.tgi import TGIClient

pytestmark = pytest.mark.real_model

CHATML = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
PLAIN = "Q: What is the capital of France?\nA: Paris\nQ: What is the capital of Italy?\nA:"


@pytest.fixture(params=["smollm2-135m", "gemma3-270m"])
def served(request: pytest.FixtureRequest) -> tuple[str, str, str]:
    """(model name, server URL, a prompt in the model's style)."""
    name = request.param
    url = request.getfixturevalue("smollm" if name.startswith("smollm") else "gemma")
    prompt = CHATML if BUNDLED[name].prompt_style == "chatml" else PLAIN
    return name, url, prompt


def client_for(name: str, url: str) -> TGIClient:
    return TGIClient(EngineConfig(url=url, profile=ModelProfile(name, BUNDLED[name].parameters)))


async def test_generate_counts_stop_and_start_up_check(served: tuple[str, str, str]) -> None:
    name, url, prompt = served
    client = client_for(name, url)
    assert (await check_engine(client)).model_id == name
    result = await client.generate(prompt, max_new_tokens=8, details=True)
    assert "Paris" in result.text or "Rome" in result.text
    assert result.generated_tokens == len(result.token_logprobs) <= 8
    prefill = await client.prompt_logprobs(prompt)
    assert result.prompt_tokens == prefill.prompt_tokens == len(prefill.prompt_logprobs)
    stopped = await client.generate(prompt, max_new_tokens=8, details=True, stop=["a"])
    # Generation stops at the first token whose text completes the stop sequence.
    assert stopped.finish_reason == "stop_sequence" and "a" in stopped.text
    last = stopped.token_logprobs[-1].text
    assert "a" not in stopped.text[: len(stopped.text) - len(last)]
    await client.aclose()


async def test_concurrent_requests_interleave_and_match_sequential(
    served: tuple[str, str, str],
) -> None:
    name, url, prompt = served
    client = client_for(name, url)
    prompts = [prompt, prompt.replace("France", "Spain")]
    alone = [await client.generate(p, max_new_tokens=6) for p in prompts]
    together = await asyncio.gather(*(client.generate(p, max_new_tokens=6) for p in prompts))
    assert [g.text for g in together] == [g.text for g in alone]
    await client.aclose()


@pytest.fixture(scope="module")
def gemma_backend() -> Iterator[object]:
    from services.engine.backends.gguf import GGUFBackend

    backend = GGUFBackend("gemma3-270m", cache_dir=EngineServerSettings().cache_dir, threads=2)
    yield backend


def test_chunked_prompt_logprobs_equal_full_logits(gemma_backend: object) -> None:
    """Gemma's 262k vocabulary: chunked gather must equal log_softmax over full logits."""
    import torch

    from services.engine.backends.gguf import GGUFBackend

    backend = gemma_backend
    assert isinstance(backend, GGUFBackend) and backend.vocab_size == 262_144
    ids = backend.encode(PLAIN)
    backend._chunk = 5  # several chunks and a ragged last one
    _, next_logits, chunked = backend.prefill(ids, True)
    with torch.inference_mode():
        logits = backend.model(torch.tensor([ids])).logits[0].float()
    reference = torch.log_softmax(logits[:-1], dim=-1).gather(1, torch.tensor(ids[1:])[:, None])
    assert len(chunked) == len(ids) - 1
    assert torch.allclose(torch.tensor(chunked), reference[:, 0], atol=1e-3)
    assert int(next_logits.argmax()) == int(logits[-1].argmax())
