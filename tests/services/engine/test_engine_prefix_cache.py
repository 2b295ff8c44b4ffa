"""Prefix reuse: the bounded cache, the simulator's model of it, and the real backend's KV reuse."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest

from services.engine.prefix_cache import PrefixCache
from services.engine.settings import EngineServerSettings


def test_the_entry_serving_most_tokens_wins_and_the_bound_evicts_the_oldest() -> None:
    cache: PrefixCache[str] = PrefixCache(max_tokens=12)
    cache.store([1, 2, 3, 4, 5, 6], "long")
    cache.store([1, 2], "short")
    whole = cache.lookup([1, 2, 3, 4, 5, 6, 7])
    assert whole is not None and (whole.entry.state, whole.tokens, whole.whole) == ("long", 6, True)
    # Shares 4 tokens with "long": it serves 3 (the logits after the 4th are not kept).
    cut = cache.lookup([1, 2, 3, 4, 0])
    assert cut is not None and (cut.entry.state, cut.tokens, cut.whole) == ("long", 3, False)
    short = cache.lookup([1, 2, 9])
    assert short is not None and (short.entry.state, short.tokens) == ("short", 2)
    assert cache.lookup([2, 1]) is None and cache.lookup([1]) is None
    assert cache.tokens == 8
    cache.store([7, 8, 9, 10, 11], "new")  # 13 > 12: the least recently used ("long") goes
    assert cache.tokens == 7
    assert cache.lookup([1, 2, 3, 4, 5, 6]).entry.state == "short"  # type: ignore[union-attr]
    cache.store(list(range(13)), "too long")  # longer than the whole bound: not kept
    assert cache.lookup(list(range(13))) is None


def generate(url: str, inputs: str, **parameters: object) -> httpx.Response:
    body = {"inputs": inputs, "parameters": {"details": True, **parameters}}
    return httpx.post(f"{url}/generate", json=body, timeout=300)


def test_sim_reports_prompt_tokens_served_from_cache(sim_coordinator: str) -> None:
    # A level's prompt: the question and the insights so far (here one token, "Goal:").
    prompt = f"Write insights ({uuid.uuid4().hex}).\nQuestion: What is 12 + 7 * 3?\n\nGoal:"
    first = generate(sim_coordinator, prompt, max_new_tokens=20)
    assert first.json()["details"]["cached_tokens"] == 0
    prompt_tokens = int(first.headers["x-prompt-tokens"])
    again = generate(sim_coordinator, prompt, max_new_tokens=5)
    cached = again.json()["details"]["cached_tokens"]
    assert cached == prompt_tokens == int(again.headers["x-cached-tokens"])
    # The next level: the prompt and what was generated. All but the last generated token
    # were fed back through the model, so those are cached.
    level = prompt + first.json()["generated_text"]
    extended = generate(sim_coordinator, level, max_new_tokens=5)
    assert int(extended.headers["x-prompt-tokens"]) == prompt_tokens + 20
    assert extended.json()["details"]["cached_tokens"] == prompt_tokens + 20 - 1
    # OpenAI's usage carries it where vLLM puts it (the level above is now kept whole).
    usage = httpx.post(
        f"{sim_coordinator}/v1/completions", json={"prompt": level, "max_tokens": 2}, timeout=30
    ).json()["usage"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == prompt_tokens + 20
    # The stream's final details carry it too.
    with httpx.stream(
        "POST",
        f"{sim_coordinator}/generate_stream",
        json={"inputs": level, "parameters": {"max_new_tokens": 2}},
        timeout=30,
    ) as response:
        last = [line for line in response.iter_lines() if line.startswith("data:")][-1]
    assert json.loads(last[5:])["details"]["cached_tokens"] == prompt_tokens + 20


def test_sim_seam_token_merged_with_the_next_text_is_computed_again(sim_coordinator: str) -> None:
    # The prompt ends in "\n\n"; with the insights after it, "\n\nGoal:" is one token, so the
    # shared part stops a token earlier, and its last token is computed again.
    prompt = f"Write insights ({uuid.uuid4().hex}).\nQuestion: What is 2 + 3 * 4?\n\n"
    first = generate(sim_coordinator, prompt, max_new_tokens=10)
    prompt_tokens = int(first.headers["x-prompt-tokens"])
    level = generate(sim_coordinator, prompt + first.json()["generated_text"], max_new_tokens=2)
    assert level.json()["details"]["cached_tokens"] == prompt_tokens - 2


def test_sim_prefix_cache_can_be_turned_off() -> None:
    from tests.services.engine.server_fixtures import engine_server

    env = {"TANDEM_ENGINE_SIM_TOKENS_PER_S": "0", "TANDEM_ENGINE_PREFIX_CACHE_TOKENS": "0"}
    with engine_server("sim", "sim-executor", env=env) as url:
        generate(url, "Question: What is 1 + 1?\n\n", max_new_tokens=3)
        again = generate(url, "Question: What is 1 + 1?\n\n", max_new_tokens=3)
    assert again.json()["details"]["cached_tokens"] == 0


@pytest.fixture(scope="module")
def smollm_backend() -> Iterator[object]:
    from services.engine.backends.gguf import GGUFBackend

    settings = EngineServerSettings()
    yield GGUFBackend(
        "smollm2-135m", cache_dir=settings.cache_dir, threads=2, prefix_cache_tokens=4096
    )


@pytest.mark.real_model
async def test_real_backend_continues_from_kept_state(smollm_backend: object) -> None:
    """A prompt extending a kept one computes only the rest, with the same results."""
    from services.engine.backends.base import RequestContext, SamplingParams
    from services.engine.backends.gguf import GGUFBackend

    backend = smollm_backend
    assert isinstance(backend, GGUFBackend)
    question = (
        "<|im_start|>user\nWrite a long story about a fox.<|im_end|>\n<|im_start|>assistant\n"
    )
    ids = backend.encode(question)
    params = SamplingParams(max_new_tokens=6)

    def more(text: str) -> list[int]:
        return list(backend.tokenizer(text, add_special_tokens=False)["input_ids"])

    session = await backend.start(
        ids, params, prompt_logprobs=True, context=RequestContext(prompt_text=question)
    )
    tokens = [await session.step() for _ in range(6)]
    await session.aclose()
    assert not any(t.eos for t in tokens)
    assert session.cached_tokens == 0
    # The next level's prompt: the question, what was generated, then more text.
    longer = ids + [t.id for t in tokens] + more(" Think again.")
    reused = backend.prefill_reusing(longer, True)
    assert reused.cached_tokens == len(ids) + 6 - 1  # the last token was never fed back
    _, full_logits, full_logprobs = backend.prefill(longer, True)
    # Equal up to float rounding (bfloat16 on CPUs that have it): the same tokens, two passes.
    assert len(reused.logprobs) == len(full_logprobs) == len(longer) - 1
    assert max(abs(a - b) for a, b in zip(reused.logprobs, full_logprobs, strict=True)) < 0.5
    assert int(reused.next_logits.argmax()) == int(full_logits.argmax())
    # A prompt that goes on differently before the question ends: a kept state is cut back.
    other = ids[:-1] + more(" Answer in words.")
    cut = backend.prefill_reusing(other, True)
    assert cut.cached_tokens == len(ids) - 2
    _, other_logits, other_logprobs = backend.prefill(other, True)
    assert max(abs(a - b) for a, b in zip(cut.logprobs, other_logprobs, strict=True)) < 0.5
    assert int(cut.next_logits.argmax()) == int(other_logits.argmax())
    # The generated tokens' log-probs stood in for prompt log-probs of the same positions.
    generated = reused.logprobs[len(ids) - 1 : len(ids) - 1 + 5]
    assert generated == pytest.approx([t.logprob for t in tokens[:5]], abs=0.5)
