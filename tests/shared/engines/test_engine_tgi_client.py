"""The TGI adapter over real HTTP against the local server's simulator backend."""

from __future__ import annotations

import threading
import uuid
from collections.abc import AsyncIterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import aiohttp
import httpx
import pytest

from services.engine.backends.sim import END_OF_INSIGHTS, sim_tokens
from shared.engines import EngineConfig, EngineError, TransientEngineError, check_engine
from shared.engines.base import ModelProfile
from shared.engines.retry import RetryPolicy
from shared.engines.tgi import TGIClient
from shared.errors import ConfigurationError
from tests.services.engine.server_fixtures import free_port

QUESTION = "Question: What is 12 + 7 * 3?\n\n"


def config(url: str, *, headers: dict[str, str] | None = None, **kw: object) -> EngineConfig:
    return EngineConfig(
        url=url,
        profile=ModelProfile(name="sim-executor", parameters=1000),
        retry=RetryPolicy(attempts=3, backoff_s=0.01, backoff_max_s=0.05),
        headers=headers or {},
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
async def client(sim_url: str) -> AsyncIterator[TGIClient]:
    tgi = TGIClient(config(sim_url))
    yield tgi
    await tgi.aclose()


def fault(spec: str) -> dict[str, str]:
    """A fault for the first requests carrying a fresh key (so retries see it consumed)."""
    return {"X-Sim-Fault": f"{spec};key={uuid.uuid4().hex}"}


async def test_generate_reports_the_engines_exact_counts(client: TGIClient) -> None:
    result = await client.generate(QUESTION, max_new_tokens=200)
    assert result.finish_reason == "eos_token"
    assert result.prompt_tokens == len(sim_tokens(QUESTION))
    assert result.generated_tokens == len(sim_tokens(result.text)) + 1  # + the EOS token
    assert "\\boxed{" in result.text


async def test_generate_stops_at_length_and_at_stop_sequences(client: TGIClient) -> None:
    short = await client.generate(QUESTION, max_new_tokens=4)
    assert (short.finish_reason, short.generated_tokens) == ("length", 4)
    assert short.text == "Let me work through"
    stopped = await client.generate(QUESTION, max_new_tokens=50, stop=["work"])
    assert stopped.finish_reason == "stop_sequence"
    assert stopped.text == "Let me work"  # TGI keeps the stop sequence


async def test_details_carry_generated_token_logprobs(client: TGIClient) -> None:
    result = await client.generate(QUESTION, max_new_tokens=5, details=True)
    assert len(result.token_logprobs) == 5
    assert all(t.logprob is not None and t.logprob < 0 for t in result.token_logprobs)
    assert "".join(t.text for t in result.token_logprobs) == result.text


async def test_prompt_logprobs_one_per_prompt_token(client: TGIClient) -> None:
    prompt = QUESTION + "Goal: find the exact value of 12 + 7 * 3."
    result = await client.prompt_logprobs(prompt)
    tokens = sim_tokens(prompt)
    assert result.prompt_tokens == len(tokens) == len(result.prompt_logprobs)
    assert [t.text for t in result.prompt_logprobs] == tokens
    assert result.prompt_logprobs[0].logprob is None
    assert all(t.logprob is not None and t.logprob < 0 for t in result.prompt_logprobs[1:])
    assert result.generated_tokens == 1


async def test_stream_yields_tokens_then_the_final_generation(client: TGIClient) -> None:
    chunks = [c async for c in client.generate_stream(QUESTION, max_new_tokens=6)]
    final = chunks[-1].final
    assert final is not None and all(c.final is None for c in chunks[:-1])
    assert "".join(c.text for c in chunks) == final.text
    assert len([c for c in chunks if c.text]) == 6 == final.generated_tokens
    assert final.prompt_tokens == len(sim_tokens(QUESTION))


async def test_info_health_and_the_start_up_check(client: TGIClient, sim_url: str) -> None:
    info = await client.info()
    assert info.model_id == "sim-executor" and info.max_total_tokens == 6144
    assert await client.health()
    assert (await check_engine(client)).model_id == "sim-executor"
    wrong = TGIClient(
        EngineConfig(url=sim_url, profile=ModelProfile(name="gemma3-270m", parameters=1))
    )
    with pytest.raises(ConfigurationError, match="serves model 'sim-executor'"):
        await check_engine(wrong)
    await wrong.aclose()


async def test_transient_errors_are_retried_until_they_pass(sim_url: str) -> None:
    headers = fault("status=503;times=2")
    tgi = TGIClient(config(sim_url, headers=headers))
    result = await tgi.generate(QUESTION, max_new_tokens=3)  # third try succeeds
    assert result.generated_tokens == 3
    await tgi.aclose()
    # The key's two failures were used up by those retries: a plain request now passes.
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{sim_url}/generate", json={"inputs": "x"}, headers=headers)
    assert response.status_code == 200


async def test_transient_errors_surface_after_the_bound(sim_url: str) -> None:
    tgi = TGIClient(config(sim_url, headers=fault("status=429;times=10")))
    with pytest.raises(TransientEngineError) as caught:
        await tgi.generate(QUESTION, max_new_tokens=3)
    error = caught.value
    assert error.status == 429 and error.details["attempts"] == 3
    assert error.engine.endswith(sim_url) and error.route == "POST /generate"
    assert error.reason == "overloaded"
    await tgi.aclose()


async def test_final_errors_name_engine_route_status_and_reason(client: TGIClient) -> None:
    with pytest.raises(EngineError) as caught:
        await client.generate(QUESTION, max_new_tokens=3, stop=["a", "b", "c", "d", "e"])
    error = caught.value
    assert not isinstance(error, TransientEngineError)
    assert error.status == 422 and error.reason == "validation"
    assert "stop sequences" in error.message and "sim" not in error.route


async def test_refused_connection_is_transient() -> None:
    tgi = TGIClient(config(f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(TransientEngineError) as caught:
        await tgi.generate(QUESTION, max_new_tokens=3)
    assert caught.value.reason == "connection" and caught.value.details["attempts"] == 3
    assert not await tgi.health()
    await tgi.aclose()


async def test_a_stalled_engine_times_out(sim_url: str) -> None:
    tgi = TGIClient(config(sim_url, headers=fault("stall=3;times=10"), timeout_s=0.3))
    with pytest.raises(TransientEngineError) as caught:
        await tgi.generate(QUESTION, max_new_tokens=3)
    assert caught.value.reason == "timeout"
    await tgi.aclose()


async def test_disconnect_mid_stream_is_transient_and_not_replayed(sim_url: str) -> None:
    tgi = TGIClient(config(sim_url, headers=fault("disconnect=3;times=10")))
    seen: list[str] = []
    with pytest.raises(TransientEngineError) as caught:
        async for chunk in tgi.generate_stream(QUESTION, max_new_tokens=10):
            seen.append(chunk.text)
    assert len(seen) == 3  # tokens already handed out are never sent twice
    assert caught.value.reason == "connection"
    await tgi.aclose()


async def test_generate_retries_a_dropped_stream(sim_url: str) -> None:
    tgi = TGIClient(config(sim_url, headers=fault("disconnect=2;times=1")))
    result = await tgi.generate(QUESTION, max_new_tokens=5)
    assert result.generated_tokens == 5
    await tgi.aclose()


async def test_coordinator_role_by_header_continues_insights(sim_url: str) -> None:
    tgi = TGIClient(config(sim_url, headers={"X-Sim-Role": "coordinator"}))
    first = await tgi.generate(QUESTION, max_new_tokens=30)
    assert first.text.startswith("Goal:") and first.generated_tokens == 30
    rest = await tgi.generate(QUESTION + first.text, max_new_tokens=5000, stop=[END_OF_INSIGHTS])
    assert rest.finish_reason == "stop_sequence" and rest.text.endswith(END_OF_INSIGHTS)
    full = await tgi.generate(QUESTION, max_new_tokens=5000, stop=[END_OF_INSIGHTS])
    assert first.text + rest.text == full.text
    await tgi.aclose()


def test_offline_mode_of_huggingface_hub_is_refused_with_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from huggingface_hub import constants

    from shared.engines.base import ModelProfile
    from shared.engines.config import EngineConfig
    from shared.errors import ConfigurationError

    monkeypatch.setattr(constants, "is_offline_mode", lambda: True)
    with pytest.raises(ConfigurationError, match="HF_HUB_OFFLINE"):
        TGIClient(EngineConfig(url="http://127.0.0.1:1", profile=ModelProfile("m", 1)))


class Observed:
    """aiohttp's request hooks on a client: each request made and each connection opened."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.connections = 0
        self.trace = aiohttp.TraceConfig()
        self.trace.on_request_start.append(self._request)
        self.trace.on_connection_create_end.append(self._connection)

    async def _request(
        self, _: object, __: object, params: aiohttp.TraceRequestStartParams
    ) -> None:
        self.requests.append(f"{params.method} {params.url.path}")

    async def _connection(self, *_: object) -> None:
        self.connections += 1


async def test_calls_share_one_pooled_connection_and_are_not_streamed(sim_url: str) -> None:
    observed = Observed()
    tgi = TGIClient(config(sim_url), trace=[observed.trace])
    for _ in range(3):
        await tgi.generate(QUESTION, max_new_tokens=5)
    await tgi.prompt_logprobs(QUESTION)
    assert observed.requests == ["POST /generate"] * 4  # whole answers: never a stream
    assert observed.connections == 1  # kept alive, reused
    await tgi.aclose()


async def test_a_stream_is_charged_as_a_whole_call_on_the_pooled_connection(sim_url: str) -> None:
    """A followed answer streams on the same pooled client, and its final event carries the
    counts a whole call would: prompt tokens and the prefix-cache hits among them."""
    observed = Observed()
    tgi = TGIClient(config(sim_url), trace=[observed.trace])
    prompt = f"{QUESTION}({uuid.uuid4().hex})\n\n"
    whole = await tgi.generate(prompt, max_new_tokens=5)
    chunks = [c async for c in tgi.generate_stream(prompt, max_new_tokens=5)]
    final = chunks[-1].final
    assert final is not None and "".join(c.text for c in chunks) == final.text == whole.text
    assert final.prompt_tokens == whole.prompt_tokens
    assert final.cached_tokens > 0  # the whole call above left the prompt in the cache
    assert observed.requests == ["POST /generate", "POST /generate_stream"]
    assert observed.connections == 1
    await tgi.aclose()


async def test_a_stream_refused_before_it_starts_has_the_engines_status(client: TGIClient) -> None:
    with pytest.raises(EngineError) as caught:
        async for _ in client.generate_stream(QUESTION, max_new_tokens=3, stop=list("abcde")):
            pass
    assert caught.value.status == 422 and caught.value.route == "POST /generate_stream"
    assert "stop sequences" in caught.value.message


async def test_a_redirecting_engine_is_an_error_not_followed(sim_url: str) -> None:
    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(307)
            self.send_header("Location", f"{sim_url}/generate")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    tgi = TGIClient(config(f"http://127.0.0.1:{server.server_address[1]}"))
    try:
        with pytest.raises(EngineError) as caught:
            await tgi.generate(QUESTION, max_new_tokens=3)
        assert caught.value.status == 307 and caught.value.route == "POST /generate"
    finally:
        await tgi.aclose()
        server.shutdown()
