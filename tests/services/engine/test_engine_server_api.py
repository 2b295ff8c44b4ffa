"""The server's HTTP surface, spoken raw: TGI's routes, bodies, errors, metrics, faults."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

PROMPT = "Question: What is 6 * 7?\n\nAnswer:"


def post(url: str, path: str, body: dict[str, Any], **kw: object) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, timeout=120, **kw)  # type: ignore[arg-type]


def test_info_health_tokenize(any_backend: str) -> None:
    info = httpx.get(f"{any_backend}/info").json()
    for key in (
        "model_id",
        "max_input_tokens",
        "max_total_tokens",
        "max_stop_sequences",
        "max_concurrent_requests",
        "version",
        "router",
        "model_dtype",
    ):
        assert key in info
    assert httpx.get(f"{any_backend}/health").status_code == 200
    tokens = post(any_backend, "/tokenize", {"inputs": PROMPT}).json()
    assert tokens and all(set(t) == {"id", "text", "start", "stop"} for t in tokens)
    pieces = [t for t in tokens if t["stop"] > t["start"]]
    assert "".join(PROMPT[t["start"] : t["stop"]] for t in pieces) == PROMPT
    # /generate counts the same tokens as /tokenize.
    out = post(
        any_backend,
        "/generate",
        {
            "inputs": PROMPT,
            "parameters": {"max_new_tokens": 2, "details": True, "decoder_input_details": True},
        },
    ).json()
    assert len(out["details"]["prefill"]) == len(tokens)
    assert [p["id"] for p in out["details"]["prefill"]] == [t["id"] for t in tokens]


def test_generate_shapes_and_parameters(any_backend: str) -> None:
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 4, "details": False}}
    assert set(post(any_backend, "/generate", body).json()) == {"generated_text"}
    listed = post(any_backend, "/", body).json()
    assert isinstance(listed, list) and listed[0]["generated_text"]
    full = post(
        any_backend,
        "/generate",
        {"inputs": PROMPT, "parameters": {"max_new_tokens": 4, "return_full_text": True}},
    ).json()
    assert full["generated_text"] == PROMPT + listed[0]["generated_text"]
    response = post(
        any_backend,
        "/generate",
        {"inputs": PROMPT, "parameters": {"max_new_tokens": 3, "details": True}},
    )
    details = response.json()["details"]
    assert details["prefill"] == [] and len(details["tokens"]) == 3
    assert response.headers["x-prompt-tokens"] and response.headers["x-generated-tokens"] == "3"


def test_truncate_keeps_the_last_tokens(any_backend: str) -> None:
    out = post(
        any_backend,
        "/generate",
        {
            "inputs": PROMPT,
            "parameters": {"max_new_tokens": 1, "truncate": 3, "decoder_input_details": True},
        },
    ).json()
    full = post(any_backend, "/tokenize", {"inputs": PROMPT}).json()
    assert [p["id"] for p in out["details"]["prefill"]] == [t["id"] for t in full[-3:]]


def test_seeded_sampling_is_reproducible(any_backend: str) -> None:
    def sample(seed: int) -> dict[str, Any]:
        response = post(
            any_backend,
            "/generate",
            {
                "inputs": PROMPT,
                "parameters": {
                    "max_new_tokens": 6,
                    "do_sample": True,
                    "seed": seed,
                    "top_k": 50,
                    "temperature": 0.9,
                    "top_p": 0.95,
                },
            },
        )
        return dict(response.json())

    first, again = sample(11), sample(11)
    assert first["generated_text"] == again["generated_text"]
    assert first["details"]["seed"] == 11


def test_sse_stream_format(any_backend: str) -> None:
    with httpx.stream(
        "POST",
        f"{any_backend}/generate_stream",
        json={"inputs": PROMPT, "parameters": {"max_new_tokens": 3}},
        timeout=120,
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [
            json.loads(line[5:]) for line in response.iter_lines() if line.startswith("data:")
        ]
    assert [e["index"] for e in events] == list(range(1, len(events) + 1))
    assert all("top_tokens" not in e for e in events)  # TGI leaves it out when not asked
    assert all(e["generated_text"] is None for e in events[:-1])
    assert events[-1]["details"]["input_length"] > 0
    assert events[-1]["details"]["generated_tokens"] == len(events)


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"temperature": 0}, "`temperature` must be strictly positive"),
        ({"top_p": 1.0}, "`top_p` must be > 0.0 and < 1.0"),
        ({"frequency_penalty": 2.5}, "`frequency_penalty` must be >= -2.0 and <= 2.0"),
        ({"frequency_penalty": -2.01}, "`frequency_penalty` must be >= -2.0 and <= 2.0"),
        ({"top_k": 0}, "`top_k` must be strictly positive"),
        ({"max_new_tokens": 0}, "`max_new_tokens` must be strictly positive"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "`stop` supports up to 4 stop sequences"),
        ({"max_new_tokens": 10_000}, "`inputs` tokens + `max_new_tokens` must be <= 6144"),
        ({"truncate": 0}, "`truncate` must be strictly positive"),
    ],
)
def test_validation_errors_are_tgis(
    sim_executor: str, parameters: dict[str, Any], message: str
) -> None:
    response = post(sim_executor, "/generate", {"inputs": PROMPT, "parameters": parameters})
    assert response.status_code == 422
    body = response.json()
    assert body["error_type"] == "validation" and message in body["error"]
    assert body["error"].startswith("Input validation error: ")


def test_malformed_bodies_and_long_inputs(sim_executor: str) -> None:
    response = post(sim_executor, "/generate", {"parameters": {}})
    assert response.status_code == 422 and response.json()["error_type"] == "validation"
    long = post(sim_executor, "/generate", {"inputs": "word " * 5000})
    assert long.status_code == 422 and "must have less than 4096 tokens" in long.json()["error"]


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (429, "overloaded"),
        (503, "unhealthy"),
        (424, "generation"),
        (500, "incomplete_generation"),
    ],
)
def test_injected_status_faults(sim_executor: str, status: int, error_type: str) -> None:
    response = post(
        sim_executor, "/generate", {"inputs": PROMPT}, headers={"X-Sim-Fault": f"status={status}"}
    )
    assert response.status_code == status and response.json()["error_type"] == error_type


def test_injected_disconnects_drop_the_connection(sim_executor: str) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        post(sim_executor, "/generate", {"inputs": PROMPT}, headers={"X-Sim-Fault": "disconnect=0"})
    seen = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream(
            "POST",
            f"{sim_executor}/generate_stream",
            json={"inputs": PROMPT},
            headers={"X-Sim-Fault": "disconnect=2"},
            timeout=30,
        ) as response,
    ):
        for line in response.iter_lines():
            if line.startswith("data:"):
                seen.append(json.loads(line[5:]))
    assert len(seen) == 2 and all(e["details"] is None for e in seen)


def test_metrics_use_tgi_names_and_count(sim_executor: str) -> None:
    def scrape() -> str:
        return httpx.get(f"{sim_executor}/metrics").text

    def value(text: str, name: str) -> float:
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return 0.0

    before = scrape()
    post(sim_executor, "/generate", {"inputs": PROMPT, "parameters": {"max_new_tokens": 5}})
    post(sim_executor, "/generate", {"inputs": PROMPT, "parameters": {"temperature": -1}})
    after = scrape()
    assert value(after, "tgi_request_count") == value(before, "tgi_request_count") + 1
    assert value(after, "tgi_request_success") == value(before, "tgi_request_success") + 1
    assert (
        value(after, "tgi_request_generated_tokens_sum")
        == value(before, "tgi_request_generated_tokens_sum") + 5
    )
    assert (
        value(after, "tgi_request_input_length_count")
        == value(before, "tgi_request_input_length_count") + 1
    )
    assert 'tgi_request_failure{err="validation"}' in after
    for name in (
        "tgi_request_duration_bucket",
        "tgi_request_mean_time_per_token_duration_count",
        "tgi_request_inference_duration_sum",
        "tgi_batch_current_size",
    ):
        assert name in after


def test_sim_speed_and_time_to_first_token_are_configurable() -> None:
    from tests.services.engine.server_fixtures import engine_server

    env = {"TANDEM_ENGINE_SIM_TOKENS_PER_S": "20", "TANDEM_ENGINE_SIM_TTFT_S": "0.5"}
    with engine_server("sim", "sim-executor", env=env) as url:
        response = post(url, "/generate", {"inputs": PROMPT, "parameters": {"max_new_tokens": 10}})
    # 0.5 s + 10 tokens at 20/s: the server reports its own timing, at least that long.
    assert int(response.headers["x-total-time"]) >= 950


def test_tgi_document_details_the_fuzz_may_miss(sim_executor: str) -> None:
    """Deterministic cases of TGI's document (the fuzz in test_engine_tgi_openapi is random)."""
    # TGI's deserializer is strict: a number is no boolean.
    assert post(sim_executor, "/", {"inputs": PROMPT, "stream": 0}).status_code == 422
    # Every documented parameter is typed, used or not: a LoRA adapter id is a string or null.
    for adapter_id, status in (([], 422), (None, 200)):
        parameters: dict[str, Any] = {"adapter_id": adapter_id, "max_new_tokens": 2}
        assert (
            post(sim_executor, "/", {"inputs": PROMPT, "parameters": parameters}).status_code
            == status
        )
    # /generate_stream documents its errors as an event stream, with TGI's statuses.
    refused = post(
        sim_executor, "/generate_stream", {"inputs": PROMPT, "parameters": {"max_new_tokens": 0}}
    )
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("text/event-stream")
    assert json.loads(refused.text.removeprefix("data:"))["error_type"] == "validation"
    # /v1/completions: an id and a fingerprint; an empty prompt list is a valid, empty request.
    empty = post(sim_executor, "/v1/completions", {"prompt": []})
    assert empty.status_code == 200
    assert empty.json()["id"] and empty.json()["system_fingerprint"]
    assert empty.json()["choices"] == [] and empty.json()["usage"]["total_tokens"] == 0
    two = post(sim_executor, "/v1/completions", {"prompt": ["a", "b"]})
    assert two.status_code == 422 and two.json()["error_type"] == "batch size exceeded"
    # Chat is not served: TGI's answer for a model without a chat template.
    chat = post(sim_executor, "/v1/chat/completions", {"messages": []})
    assert chat.status_code == 422 and chat.json()["error_type"] == "template_error"
    # SageMaker's /invocations routes by the body's shape.
    generated = post(
        sim_executor, "/invocations", {"inputs": PROMPT, "parameters": {"max_new_tokens": 2}}
    )
    assert generated.json()["details"]["generated_tokens"] == 2
    completed = post(sim_executor, "/invocations", {"prompt": PROMPT, "max_tokens": 2})
    assert completed.json()["usage"]["completion_tokens"] == 2
    # Whatever the route, an error has TGI's body.
    missing = httpx.get(f"{sim_executor}/no-such-route")
    assert missing.status_code == 404 and set(missing.json()) == {"error", "error_type"}
