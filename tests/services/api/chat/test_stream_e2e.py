"""A streamed chat completion from the real pipeline: ``tandem worker`` processes and sim engine
servers write the events the stream follows (the executor's ``answer`` among them)."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest

from tests.services.api.test_api_pipeline_e2e import live_api, tenant_key

pytestmark = pytest.mark.e2e
__all__ = ["live_api"]


def test_openai_stream_from_the_real_pipeline(live_api: str) -> None:
    client = openai.OpenAI(
        base_url=f"{live_api}/v1", api_key=tenant_key(live_api), max_retries=0, timeout=120
    )
    chunks = list(
        client.chat.completions.create(
            model="tandem",
            messages=[{"role": "user", "content": "What is 12 + 30?"}],
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"domain": "math"},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish, usage = chunks[-2], chunks[-1]
    assert finish.choices[0].finish_reason in ("stop", "length")
    tandem = finish.model_extra["tandem"]  # type: ignore[index]
    job = client.get(f"/jobs/{tandem['job_id']}", cast_to=dict)
    assert text == job["answer"] and job["status"] == "succeeded"
    assert Decimal(tandem["cost"]) == Decimal(job["cost"]) > 0
    assert usage.usage is not None and usage.usage.completion_tokens > 0
