"""Both adapters report the prompt tokens an engine served from its prefix cache (what the
cached-prompt price is charged on), over real HTTP against the simulator."""

from __future__ import annotations

import uuid

import pytest

from shared.engines import EngineConfig
from shared.engines.base import EngineClient, ModelProfile
from shared.engines.openai_compat import OpenAICompatClient
from shared.engines.role_settings import EngineKind
from shared.engines.tgi import TGIClient


@pytest.mark.parametrize("kind", [EngineKind.TGI, EngineKind.OPENAI])
async def test_a_repeated_prompt_reports_its_cached_tokens(sim_url: str, kind: EngineKind) -> None:
    config = EngineConfig(
        url=sim_url, kind=kind, profile=ModelProfile(name="sim-executor", parameters=1000)
    )
    client: EngineClient = (
        TGIClient(config) if kind is EngineKind.TGI else OpenAICompatClient(config)
    )
    prompt = f"Question {uuid.uuid4().hex}: what is 2 + 3?\n\n"
    try:
        cold = await client.generate(prompt, max_new_tokens=4)
        warm = await client.generate(prompt, max_new_tokens=4)
    finally:
        await client.aclose()
    assert cold.cached_tokens < warm.cached_tokens <= warm.prompt_tokens
    assert warm.prompt_tokens == cold.prompt_tokens
