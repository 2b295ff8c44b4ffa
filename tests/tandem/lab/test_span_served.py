"""The scorer finds the insight span in what the served engine returns where the trainer finds it
in a collected file.

The ``insight-span`` features are computed twice: by the scorer, from the prompt tokens the
engine returns (the end marker found by its text, the insights' start recorded at level 0), and
offline, from a collected file's log-probs alone (the lab layout's suffix length). A classifier
is only served what it was trained on if both give the same span; here pair v3's executor is
served by ``tandem engine serve`` (prefix cache on, as the stack runs it), asked through the
engine client the scorer uses, and the spans and feature vectors compared with the committed
collected file's.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.scorer.service import insight_span
from shared.db.models import Job
from shared.engines.base import Generation, ModelProfile
from shared.engines.config import EngineConfig
from shared.engines.factory import make_client
from shared.features import INSIGHT_SPAN
from shared.prompts import executor_prompt, family_of
from tandem.classifier.collected import Featurizer, read_collected
from tandem.classifier.questions import prompt_domain
from tandem.lab.configs import MODELS_DIR
from tests.services.engine.server_fixtures import engine_server

ROOT = Path(__file__).resolve().parents[3]
COLLECTED = ROOT / "models" / "classifier" / "data" / "lab-v3-ages.jsonl"
MODEL_ID = "tandem-lab-v3-executor"
QUESTIONS = 4
# Log-probs from another CPU, or from a cached prefix, move in their last digits (see
# test_lab_pair_served.py); the spans, counts and levels must not move at all.
FLOAT_REL, FLOAT_ABS = 3e-2, 0.3


@pytest.fixture(scope="module")
def executor() -> Iterator[str]:
    env = {"TANDEM_ENGINE_THREADS": "1", "TANDEM_ENGINE_MODEL_ID": MODEL_ID}
    with engine_server("gguf", str(MODELS_DIR / "v3" / "executor"), env=env) as url:
        yield url


def test_the_scorer_finds_the_span_the_trainer_finds(executor: str) -> None:
    header, questions = read_collected(COLLECTED)
    assert header.executor.served_model == MODEL_ID
    offline = Featurizer.of(INSIGHT_SPAN, header)
    config = EngineConfig(url=executor, profile=ModelProfile(MODEL_ID, header.executor.parameters))
    family = family_of(MODEL_ID)
    chosen = [q for q in questions if q.levels[-1].insight_tokens > 0][:QUESTIONS]
    assert len(chosen) == QUESTIONS

    async def served_prompts() -> list[list[Generation]]:
        client = make_client(config)
        try:
            return [
                [
                    await client.prompt_logprobs(
                        executor_prompt(
                            q.question, q.insights_at(level), prompt_domain(q.domain), family
                        )
                    )
                    for level in range(len(q.levels))
                ]
                for q in chosen
            ]
        finally:
            await client.aclose()

    for question, results in zip(chosen, asyncio.run(served_prompts()), strict=True):
        job = Job(id=uuid.uuid4(), scores=[])
        for level, result in enumerate(results):
            span = insight_span(job, level, result, config)
            assert span == question.span_at(level, offline.suffix_tokens), (question.id, level)
            job.scores = [*job.scores, {"level": level, "insights_start": span.start}]
            served = INSIGHT_SPAN.vector(
                [t.logprob for t in result.prompt_logprobs],
                level,
                0,
                span,
            )
            expected = offline.vector(question, level)
            assert served[:2] == expected[:2], (question.id, level)  # level, span length
            assert served == pytest.approx(expected, rel=FLOAT_REL, abs=FLOAT_ABS), question.id
