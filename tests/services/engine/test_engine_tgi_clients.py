"""TGI's own clients against the local server: they must not tell it from TGI.

``text-generation`` (TGI's client package) runs in a subprocess from an isolated target
directory, because it pins huggingface-hub<1.0; huggingface_hub's InferenceClient runs here.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from huggingface_hub import InferenceClient
from huggingface_hub.errors import OverloadedError, ValidationError

from tests.services.engine.server_fixtures import run_tgi_client

TEXT_GENERATION_SCRIPT = r"""
import json, sys
import huggingface_hub, text_generation
from text_generation import Client
from text_generation.errors import ValidationError, OverloadedError

url = sys.argv[1]
client = Client(url, timeout=120)
out = {"hub_version": huggingface_hub.__version__}
r = client.generate("Question: What is 2 + 3?\n\nAnswer:", max_new_tokens=6,
                    decoder_input_details=True)
out["generate"] = {
    "text": r.generated_text,
    "finish": r.details.finish_reason.value,
    "generated_tokens": r.details.generated_tokens,
    "n_tokens": len(r.details.tokens),
    "prefill": [[t.id, t.text, t.logprob] for t in r.details.prefill],
}
events = list(client.generate_stream("Question: What is 2 + 3?\n\nAnswer:", max_new_tokens=6))
out["stream"] = {
    "texts": [e.token.text for e in events],
    "special": [e.token.special for e in events],
    "final_text": events[-1].generated_text,
    "finish": events[-1].details.finish_reason.value,
    "generated_tokens": events[-1].details.generated_tokens,
    "others_final": [e.generated_text for e in events[:-1]],
}
try:
    client.generate("x", max_new_tokens=2, stop_sequences=["a", "b", "c", "d", "e"])
except ValidationError as e:
    out["validation_error"] = str(e)
busy = Client(url, timeout=30, headers={"X-Sim-Fault": "status=429"})
try:
    busy.generate("x", max_new_tokens=2)
except OverloadedError as e:
    out["overloaded_error"] = str(e)
print(json.dumps(out))
"""


def _text_generation(url: str) -> dict[str, Any]:
    done = run_tgi_client(TEXT_GENERATION_SCRIPT, url)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_text_generation_client_generate_and_stream(any_backend: str) -> None:
    out = _text_generation(any_backend)
    assert out["hub_version"].startswith("0.")  # really the isolated, old-pinned client
    gen, stream = out["generate"], out["stream"]
    assert gen["generated_tokens"] == gen["n_tokens"] >= 1
    assert gen["finish"] in ("length", "eos_token", "stop_sequence")
    assert len(gen["prefill"]) >= 5 and gen["prefill"][0][2] is None
    assert all(lp is not None and lp <= 0 for _, _, lp in gen["prefill"][1:])
    # Greedy: the stream generates exactly what generate did, token by token.
    assert stream["final_text"] == gen["text"]
    assert stream["generated_tokens"] == gen["generated_tokens"] == len(stream["texts"])
    joined = "".join(t for t, s in zip(stream["texts"], stream["special"], strict=True) if not s)
    assert joined == gen["text"]
    assert stream["others_final"] == [None] * (len(stream["texts"]) - 1)


def test_text_generation_client_errors(sim_executor: str) -> None:
    out = _text_generation(sim_executor)
    assert "stop sequences" in out["validation_error"]
    assert "overloaded" in out["overloaded_error"].lower()


def test_huggingface_hub_inference_client(any_backend: str) -> None:
    client = InferenceClient(model=any_backend, timeout=120)
    prompt = "Question: What is 2 + 3?\n\nAnswer:"
    out = client.text_generation(prompt, max_new_tokens=5, details=True, decoder_input_details=True)
    assert out.details is not None
    prefill = out.details.prefill
    assert prefill[0].logprob is None and all(t.logprob <= 0 for t in prefill[1:])
    assert out.details.generated_tokens == len(out.details.tokens) <= 5
    streamed = list(client.text_generation(prompt, max_new_tokens=5, stream=True, details=True))
    assert streamed[-1].generated_text == out.generated_text
    assert streamed[-1].details is not None
    assert streamed[-1].details.input_length == len(prefill)
    info = InferenceClient(model=any_backend, provider="hf-inference").get_endpoint_info()
    assert info["model_id"] and info["max_total_tokens"] > 0
    if out.details.generated_tokens >= 3:
        assert client.text_generation(prompt, max_new_tokens=3) == "".join(
            e.token.text for e in streamed[:3] if not e.token.special
        )


def test_huggingface_hub_client_parses_our_errors(sim_executor: str) -> None:
    client = InferenceClient(model=sim_executor, timeout=30)
    with pytest.raises(ValidationError, match="temperature"):
        client.text_generation("x", max_new_tokens=2, temperature=-1.0)
    busy = InferenceClient(model=sim_executor, timeout=30, headers={"X-Sim-Fault": "status=429"})
    with pytest.raises(OverloadedError):
        busy.text_generation("x", max_new_tokens=2)
