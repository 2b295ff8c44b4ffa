"""The committed lab pair served by ``tandem engine serve`` over TGI's HTTP API.

The server loads each model directory with plain transformers (no project code in the model);
the coordinator writes well-formed insights over HTTP, stopping on ``</I>``, and the executor,
given those insights, answers test questions. The classifier's collected data is what the served
pair writes: the first test questions are collected again and must match the committed rows
exactly (greedy, one thread each; collecting the whole file takes about ten minutes), and
``tests/tandem/classifier/test_shipped_tables.py`` reproduces the table from that file, so the
table is checked from the weights up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.prompts import LAB_MODEL_PREFIX
from shared.prompts.lab import INSIGHT_END, executor_prompt, insight_prompt
from tandem.datasets import Split, generate, grade
from tandem.lab.configs import MODELS_DIR, SEED, Role
from tandem.lab.evaluate import MAX_INSIGHT_TOKENS, MAX_SOLUTION_TOKENS
from tests.services.engine.server_fixtures import engine_server

ROOT = Path(__file__).resolve().parents[3]
QUESTIONS = 6


@pytest.fixture(scope="module")
def served() -> Iterator[dict[Role, str]]:
    def env(role: Role) -> dict[str, str]:
        # No prefix reuse: the committed rows were collected with every prompt prefilled whole.
        return {
            "TANDEM_ENGINE_THREADS": "1",
            "TANDEM_ENGINE_MODEL_ID": model_id(role),
            "TANDEM_ENGINE_PREFIX_CACHE_TOKENS": "0",
        }

    with (
        engine_server("gguf", str(MODELS_DIR / "coordinator"), env=env(Role.COORDINATOR)) as c,
        engine_server("gguf", str(MODELS_DIR / "executor"), env=env(Role.EXECUTOR)) as e,
    ):
        yield {Role.COORDINATOR: c, Role.EXECUTOR: e}


def model_id(role: Role) -> str:
    return f"{LAB_MODEL_PREFIX}-{role.value}"


def tgi_generate(url: str, prompt: str, max_new_tokens: int, stop: list[str]) -> dict[str, Any]:
    response = httpx.post(
        f"{url}/generate",
        json={
            "inputs": prompt,
            "parameters": {"max_new_tokens": max_new_tokens, "stop": stop, "details": True},
        },
        timeout=120,
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def test_served_pair_matches_in_process_and_answers(served):
    records = generate("catalog", Split.TEST, QUESTIONS, seed=SEED)
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
        assert text.lstrip().startswith("Retrieval:") and "Plan:" in text
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


COLLECTED = ROOT / "models" / "classifier" / "data" / "lab-catalog.jsonl"
COLLECTED_AGAIN = 4


def rows(path: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return lines[0], {row["id"]: row for row in lines[1:]}


def test_collected_rows_are_what_the_served_pair_writes(
    served: dict[Role, str], tmp_path: Path
) -> None:
    header, committed = rows(COLLECTED)
    env = {**os.environ}
    for role in Role:
        prefix = f"TANDEM_{role.value.upper()}_ENGINE_"
        env[prefix + "URL"] = served[role]
        env[prefix + "MODEL_ID"] = model_id(role)
        env[prefix + "MODEL_PARAMETERS"] = str(header[role.value]["parameters"])
    out = tmp_path / "again.jsonl"
    levels = ",".join(map(str, header["levels"]))
    command = [
        *("classifier", "collect", "--dataset", header["source"], "--split", "test"),
        *("--count", str(COLLECTED_AGAIN), "--levels", levels, "--seed", "99"),
        *("--answer-tokens", str(header["answer_tokens"]), "--out", str(out), "--no-progress"),
    ]
    subprocess.run([sys.executable, "-m", "tandem", *command], check=True, cwd=ROOT, env=env)
    again_header, again = rows(out)
    assert again_header["prompt_version"] == header["prompt_version"] == "lab-v1"
    assert len(again) == COLLECTED_AGAIN
    for question_id, row in again.items():
        assert_same_row(row, committed[question_id], question_id)


# Another CPU sums in another order: log-probs and the features from them may move in their
# last digits (the file keeps five decimals), while every text, token count and label must not.
# Another CPU (or thread count, or reduced-precision kernels where the CPU has them) sums in
# another order: log-probs were seen up to 1.3% (0.056) apart between two machines, and up to
# 0.14 nats (10% of -1.42) on an AVX2-only machine against the one that collected the file, with
# every text, token count and grade the same. A changed model or prompt moves them by nats.
FLOAT_REL, FLOAT_ABS = 3e-2, 0.3


def assert_same_row(actual: object, expected: object, where: str) -> None:
    """``actual == expected``, but floats within FLOAT_REL / FLOAT_ABS of each other."""
    if isinstance(expected, float) and isinstance(actual, int | float):
        assert not isinstance(actual, bool), where
        assert actual == pytest.approx(expected, rel=FLOAT_REL, abs=FLOAT_ABS), where
    elif isinstance(expected, dict):
        assert isinstance(actual, dict) and actual.keys() == expected.keys(), where
        for key, value in expected.items():
            assert_same_row(actual[key], value, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), where
        for index, (got, want) in enumerate(zip(actual, expected, strict=True)):
            assert_same_row(got, want, f"{where}[{index}]")
    else:
        assert actual == expected, where


def test_a_row_comparison_tolerates_float_noise_and_nothing_else() -> None:
    _, committed = rows(COLLECTED)
    row = next(iter(committed.values()))
    noisy = json.loads(json.dumps(row))
    noisy["levels"][0]["logprobs"][1] *= 1 + 1e-2
    noisy["levels"][0]["answer"]["mean_logprob"] += 5e-3
    assert_same_row(noisy, row, "row")

    def copy() -> dict[str, Any]:
        copied: dict[str, Any] = json.loads(json.dumps(row))
        return copied

    logprob, text, tokens, fewer = copy(), copy(), copy(), copy()
    logprob["levels"][0]["logprobs"][1] -= 1.0
    text["levels"][0]["answer"]["text"] += "!"
    tokens["levels"][0]["scoring"]["prompt_tokens"] += 1
    fewer["levels"].pop()
    for changed in (logprob, text, tokens, fewer):
        with pytest.raises(AssertionError):
            assert_same_row(changed, row, "row")
