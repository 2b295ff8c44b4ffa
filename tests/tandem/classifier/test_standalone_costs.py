"""Each policy is charged as if it ran alone on the engines: a prompt-cache hit that another
policy's call left during collect is not its own.

Collect runs, per question, the level-1 extension (its prompt ``Q: ...\\nI:`` also begins the
coordinator-alone prompt), the scoring pass and then the answer over the same executor prompt,
and the coordinator alone last. The question below is what such a run records.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from shared.classifier.rules import ThresholdRule
from shared.engines.base import ModelProfile
from tandem.classifier.collected import Answer, Call, CollectedQuestion, LevelResult
from tandem.classifier.policies import (
    CostModel,
    cascade,
    coordinator_alone,
    fixed_level,
    tandem,
)

COORDINATOR = ModelProfile("big", 1000, Decimal("2"), Decimal("6"))
EXECUTOR = ModelProfile("small", 100, Decimal("1"), Decimal("3"))
COSTS = CostModel(COORDINATOR, EXECUTOR, EXECUTOR)
SHARED = 2  # the prompt layout every question begins with, served by other questions' calls


def _answer(prompt: int, cached: int, correct: bool) -> Answer:
    return Answer("", None, correct, Call(prompt, 40, cached), -0.1, "eos_token")


def _level(
    level: int, budget: int, extension: Call | None, prompt: int, scored: int
) -> LevelResult:
    return LevelResult(
        level=level,
        budget=budget,
        extension=extension,
        insight_tokens=budget,
        insight_chars=budget,
        finished=False,
        scoring=Call(prompt, 1, scored),
        logprobs=(None,) * prompt,
        # the scoring pass over the same prompt went just before: the whole prompt was cached
        answer=_answer(prompt, prompt, correct=level > 0),
    )


QUESTION = CollectedQuestion(
    id="q",
    domain="shop",
    split="test",
    grader="math",
    question="",
    reference="",
    insights="",
    levels=(
        _level(0, 0, None, prompt=30, scored=SHARED),
        # the extension's cache: other questions; level 1's scoring continues level 0's prefix
        _level(1, 7, Call(26, 7, SHARED), prompt=37, scored=25),
    ),
    # 26 of its 30 prompt tokens are the level-1 extension's prompt, left in the cache
    coordinator_alone=_answer(30, 26, correct=True),
)


def test_the_coordinator_alone_pays_for_the_prompt_the_extension_had_cached() -> None:
    spend = coordinator_alone(QUESTION).spend
    assert spend.coordinator_cached == SHARED
    assert COSTS.flops_prompt(spend) == 2 * 1000 * (30 - SHARED)


def test_a_fixed_level_pays_for_the_prompt_only_the_scoring_pass_had_cached() -> None:
    for level in (0, 1):
        spend = fixed_level(QUESTION, level).spend
        assert spend.executor_cached == SHARED
    level_one = fixed_level(QUESTION, 1).spend
    # its own extension (first on the coordinator) and its answer, both computed but SHARED
    assert COSTS.flops_prompt(level_one) == 2 * (1000 * (26 - SHARED) + 100 * (37 - SHARED))


def test_the_cascade_pays_for_both_of_its_prompts() -> None:
    spend = cascade(QUESTION, confidence_threshold=0.0).spend  # -0.1 < 0: it escalates
    assert (spend.executor_cached, spend.coordinator_cached) == (SHARED, SHARED)


def test_tandem_keeps_the_hits_its_own_calls_left() -> None:
    outcome = tandem(QUESTION, [0.1, 0.9], ThresholdRule({0: 0.5, 7: 0.5}))
    assert (outcome.stopped_at, outcome.level) == (1, 1)
    spend = outcome.spend
    # its level-1 scoring continued its level-0 scoring; its answer reused its own scoring pass
    assert spend.scorer_cached == SHARED + 25
    assert spend.executor_cached == 37
    assert spend.coordinator_cached == SHARED


def test_without_a_prefix_cache_nothing_changes() -> None:
    def cold(call: Call) -> Call:
        return replace(call, cached_tokens=0)

    levels = tuple(
        replace(
            r,
            extension=r.extension and cold(r.extension),
            scoring=cold(r.scoring),
            answer=replace(r.answer, call=cold(r.answer.call)),
        )
        for r in QUESTION.levels
    )
    assert QUESTION.coordinator_alone is not None
    alone = replace(QUESTION.coordinator_alone, call=cold(QUESTION.coordinator_alone.call))
    question = replace(QUESTION, levels=levels, coordinator_alone=alone)
    assert COSTS.flops_prompt(coordinator_alone(question).spend) == 2 * 1000 * 30
    assert COSTS.flops_prompt(fixed_level(question, 1).spend) == 2 * (1000 * 26 + 100 * 37)
