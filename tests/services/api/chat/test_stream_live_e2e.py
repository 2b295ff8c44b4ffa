"""The answer streamed as it is generated, from the real pipeline: a ``tandem worker``
executor streams its engine call from a sim engine at 100 tokens/s and publishes the text; the
API turns it into ``reasoning_content`` chunks (OpenAI's door) and ``answer_delta`` events (a
job's event stream) before the answer itself."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import redis
from openai.types.chat import ChatCompletionMessageParam

from services.api.settings import ApiSettings
from shared.jobs.answer_stream import key
from tests.services.api.jobs.test_events_and_webhooks import read_sse
from tests.services.api.test_api_pipeline_e2e import serving_pipeline, tenant_key

pytestmark = pytest.mark.e2e
QUESTION: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What is 12 + 30?"}]


@pytest.fixture(scope="module")
def slow_api(
    artifacts_dir: Path, database_url: str, redis_url: str, api_settings: ApiSettings
) -> Iterator[str]:
    """The executor alone (``slm_only``): its 48-token answer takes ~0.5 s to generate."""
    logs = artifacts_dir / "stream-live-e2e"
    with serving_pipeline(
        logs, api_settings, redis_url, ["executor", "accounting"], tokens_per_s="100"
    ) as url:
        yield url


def test_openai_stream_carries_the_text_as_it_is_generated(slow_api: str) -> None:
    key_ = tenant_key(slow_api)
    client = openai.OpenAI(base_url=f"{slow_api}/v1", api_key=key_, max_retries=0, timeout=120)
    api = httpx.Client(base_url=slow_api, headers={"Authorization": f"Bearer {key_}"})
    stream = client.chat.completions.create(
        model="tandem-slm_only",
        messages=QUESTION,
        stream=True,
    )
    job_id, seen, statuses = "", list[tuple[str, str]](), list[str]()
    for chunk in stream:
        if chunk.model_extra and "tandem" in chunk.model_extra and not job_id:
            job_id = chunk.model_extra["tandem"]["job_id"]
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        reasoning = (delta.model_extra or {}).get("reasoning_content")
        if reasoning:
            if not statuses:  # the job, when its first text arrives
                statuses.append(api.get(f"/v1/jobs/{job_id}").json()["status"])
            seen.append(("reasoning", reasoning))
        elif delta.content:
            seen.append(("content", delta.content))
    job = api.get(f"/v1/jobs/{job_id}").json()
    kinds = [kind for kind, _ in seen]
    assert kinds[-1] == "content" and kinds.count("content") == 1
    assert kinds.count("reasoning") >= 3  # in pieces, not at once
    assert "".join(text for kind, text in seen if kind == "reasoning") == job["reasoning"]
    assert seen[-1][1] == job["answer"] and job["status"] == "succeeded"
    # Streamed while the executor was still generating: its step had not recorded the answer
    # yet (a baseline's job enters ``executing`` when that step records).
    assert statuses[0] in ("queued", "executing")


def test_job_event_stream_sends_answer_deltas(slow_api: str, redis_url: str) -> None:
    api = httpx.Client(
        base_url=slow_api, headers={"Authorization": f"Bearer {tenant_key(slow_api)}"}
    )
    body = {"question": "What is 2 + 9?", "domain": "math", "policy": "slm_only"}
    job_id = api.post("/v1/jobs", json={**body, "stream_answer": True}).json()["id"]
    with api.stream("GET", f"/v1/jobs/{job_id}/events", timeout=60) as response:
        messages = list(read_sse(response))
    kinds = [event for _, event, _ in messages]
    deltas = [json.loads(data)["text"] for _, event, data in messages if event == "answer_delta"]
    assert len(deltas) >= 3 and kinds.index("answer") > kinds.index("answer_delta")
    assert all(not id_ for id_, event, _ in messages if event == "answer_delta")  # not resumable
    job = api.get(f"/v1/jobs/{job_id}").json()
    assert "".join(deltas) == job["reasoning"] and kinds[-1] == "done"
    assert redis.Redis.from_url(redis_url).ttl(key(job_id)) > 0  # it expires

    # A job nobody follows live is answered by one whole engine call: nothing is published.
    plain = api.post("/v1/jobs", json=body).json()["id"]
    deadline = time.monotonic() + 60
    while api.get(f"/v1/jobs/{plain}").json()["status"] != "succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert not redis.Redis.from_url(redis_url).exists(key(plain))
    with api.stream("GET", f"/v1/jobs/{plain}/events", timeout=60) as response:
        assert "answer_delta" not in [event for _, event, _ in read_sse(response)]


def test_cli_submit_live_prints_the_text_as_it_comes(slow_api: str) -> None:
    from typer.testing import CliRunner

    from tandem.cli import app

    env = {"TANDEM_URL": slow_api, "TANDEM_API_KEY": tenant_key(slow_api)}
    args = ["jobs", "submit", "What is 3 + 4?", "--domain", "math", "--policy", "slm_only"]
    result = CliRunner().invoke(app, [*args, "--live"], env=env)
    assert result.exit_code == 0, result.output
    live, _, summary = result.output.partition("\n")
    job_id = summary.split()[0]
    api = httpx.Client(
        base_url=slow_api, headers={"Authorization": f"Bearer {env['TANDEM_API_KEY']}"}
    )
    job = api.get(f"/v1/jobs/{job_id}").json()
    assert live == job["reasoning"] and job["answer"] in summary
