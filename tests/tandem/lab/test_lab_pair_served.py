"""The committed lab pair served by ``tandem engine serve`` over TGI's HTTP API.

The server loads each model directory with plain transformers (no project code in the model);
the coordinator writes well-formed insights over HTTP, stopping on ``</I>``, and the executor,
given those insights, answers test questions about as often as the in-process measurement.
(Token-for-token equality with the in-process, batched and padded, bfloat16 run is not expected.)
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from shared.datasets import Split, generate, grade
from tandem.lab.configs import MODELS_DIR, SEED, Role
from tandem.lab.evaluate import MAX_INSIGHT_TOKENS, MAX_SOLUTION_TOKENS
from tandem.lab.prompts import INSIGHT_END, executor_prompt, insight_prompt
from tests.services.engine.server_fixtures import engine_server

QUESTIONS = 6


@pytest.fixture(scope="module")
def served() -> Iterator[dict[Role, str]]:
    env = {"TANDEM_ENGINE_THREADS": "1"}
    with (
        engine_server("gguf", str(MODELS_DIR / Role.COORDINATOR.value), env=env) as coordinator,
        engine_server("gguf", str(MODELS_DIR / Role.EXECUTOR.value), env=env) as executor,
    ):
        yield {Role.COORDINATOR: coordinator, Role.EXECUTOR: executor}


def tgi_generate(url: str, prompt: str, max_new_tokens: int, stop: list[str]) -> dict:
    response = httpx.post(
        f"{url}/generate",
        json={
            "inputs": prompt,
            "parameters": {"max_new_tokens": max_new_tokens, "stop": stop, "details": True},
        },
        timeout=120,
    )
    response.raise_for_status()
    return response.json()


def test_served_pair_matches_in_process_and_answers(served):
    records = generate("math", Split.TEST, QUESTIONS, seed=SEED)
    right = 0
    for record in records:
        insights = tgi_generate(
            served[Role.COORDINATOR],
            insight_prompt(record.question),
            MAX_INSIGHT_TOKENS,
            [INSIGHT_END],
        )
        assert insights["details"]["finish_reason"] == "stop_sequence"
        text = insights["generated_text"].removesuffix(INSIGHT_END)
        assert text.lstrip().startswith("Goal:") and "Action:" in text
        answer = tgi_generate(
            served[Role.EXECUTOR],
            executor_prompt(record.question, text),
            MAX_SOLUTION_TOKENS,
            [],
        )
        assert "Answer:" in answer["generated_text"]
        right += grade(record.grader, answer["generated_text"], record.reference)
    print(f"served pair: {right} of {QUESTIONS} right")
    assert right >= 3
