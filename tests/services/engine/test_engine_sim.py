"""The simulator's contract (services/engine/backends/sim.py): what the pipeline relies on."""

from __future__ import annotations

import statistics
from fractions import Fraction

import pytest

from services.engine.backends.base import PromptToken, RequestContext, SamplingParams
from services.engine.backends.sim import (
    END_OF_INSIGHTS,
    SimBackend,
    SimKnobs,
    answer_of,
    find_expression,
    insight_tokens_in,
    question_of,
    sim_tokens,
)
from services.engine.settings import EngineServerSettings

KNOBS = SimKnobs.from_settings(EngineServerSettings(sim_tokens_per_s=0))
GREEDY = SamplingParams(max_new_tokens=5000)


async def run(
    backend: SimBackend, prompt: str, *, logprobs: bool = False
) -> tuple[str, list[PromptToken]]:
    session = await backend.start(
        backend.encode(prompt),
        GREEDY,
        prompt_logprobs=logprobs,
        context=RequestContext(prompt_text=prompt),
    )
    text = ""
    while not (token := await session.step()).eos:
        text += token.text
    return text, session.prompt


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("What is 12 + 7 * 3?", "33"),
        ("Compute (4 + 5) * 6.", "54"),
        ("What is 7 / 2 - 1?", "5/2"),
        ("How much is 3 x 4 + 1?", "13"),
        ("What is 10 \u00f7 4?", "5/2"),
        ("Round 3.5 * 2 please", "7"),
        ("What is the capital of France?", None),
    ],
)
def test_the_simulator_knows_the_answer(question: str, answer: str | None) -> None:
    assert answer_of(f"Some preamble 1 + 1.\nQuestion: {question}\n\nGoal: 99 * 2") == answer


def test_question_without_marker_is_the_prompt() -> None:
    assert question_of("What is 2 + 2?") == "What is 2 + 2?"
    assert find_expression("2 + 2") == ("2 + 2", Fraction(4))


def test_tokens_recombine() -> None:
    text = "Goal: x\nPlanning:  two  spaces\n\n end "
    assert "".join(sim_tokens(text)) == text
    assert sim_tokens("a b") == ["a", " b"]


async def test_insights_are_structured_resumable_and_end_with_the_marker() -> None:
    backend = SimBackend("sim-coordinator", KNOBS)
    prompt = "Write insights.\nQuestion: What is 12 + 7 * 3?\n\n"
    full, _ = await run(backend, prompt)
    lines = full.split("\n")
    assert [line.split(":")[0] for line in lines] == ["Goal", "Planning", "Retrieval", "Action"]
    assert "7 * 3 = 21" in full and "12 + 21 = 33" in full
    assert full.endswith(" " + END_OF_INSIGHTS) and "\n\n" not in full
    tokens = sim_tokens(full)
    length = len(tokens) - 1  # the marker
    assert KNOBS.insight_tokens * 0.75 <= length <= KNOBS.insight_tokens * 1.25
    # Continuing from any cut gives the same insights.
    for cut in (1, 100, length - 3):
        rest, _ = await run(backend, prompt + "".join(tokens[:cut]))
        assert "".join(tokens[:cut]) + rest == full
    assert insight_tokens_in(prompt + full) == length


async def test_accuracy_rises_with_insight_and_never_flips_back() -> None:
    executor = SimBackend("sim-executor", KNOBS)
    coordinator = SimBackend("sim-coordinator", KNOBS)
    levels = [0, 100, 250, 500]
    right = dict.fromkeys(levels, 0)
    for i in range(100):
        question = f"Question: What is {i + 3} * {i % 7 + 2} - {i % 5}?\n\n"
        insights = sim_tokens((await run(coordinator, question))[0])
        truth = answer_of(question)
        was_right = False
        for level in levels:
            answer, _ = await run(executor, question + "".join(insights[:level]) + "\n\nAnswer:")
            is_right = answer.endswith(f"\\boxed{{{truth}}}.")
            assert is_right or not was_right  # monotone in insight
            was_right = is_right
            right[level] += is_right
    accuracy = [right[level] / 100 for level in levels]
    assert accuracy == sorted(accuracy)
    for level, observed in zip(levels, accuracy, strict=True):
        assert observed == pytest.approx(KNOBS.accuracy(level), abs=0.13)
    assert accuracy[-1] - accuracy[0] > 0.3


async def test_prefill_logprobs_carry_the_insight_signal() -> None:
    executor = SimBackend("sim-executor", KNOBS)
    coordinator = SimBackend("sim-coordinator", KNOBS)
    means: dict[int, list[float]] = {0: [], 50: [], 400: []}
    by_outcome: dict[bool, list[float]] = {True: [], False: []}
    for i in range(60):
        question = f"Question: What is {i + 11} + {i % 9 + 1} * 4?\n\n"
        insights = sim_tokens((await run(coordinator, question))[0])
        for level in means:
            prompt = question + "".join(insights[:level])
            _, prefill = await run(executor, prompt, logprobs=True)
            values = [t.logprob for t in prefill[1:] if t.logprob is not None]
            means[level].append(statistics.fmean(values))
            if level == 50:
                answer, _ = await run(executor, prompt)
                right = answer.endswith(f"\\boxed{{{answer_of(question)}}}.")
                tail = [t.logprob for t in prefill[-50:] if t.logprob is not None]
                by_outcome[right].append(statistics.fmean(tail))
    levels = [statistics.fmean(means[level]) for level in sorted(means)]
    assert levels == sorted(levels) and levels[-1] - levels[0] > 1.0
    # At a fixed insight level, the insight tokens' log-probs tell right from wrong.
    assert by_outcome[True] and by_outcome[False]
    assert statistics.fmean(by_outcome[True]) > statistics.fmean(by_outcome[False]) + 0.2


async def test_role_header_and_sampling_seed() -> None:
    backend = SimBackend("sim-executor", KNOBS)
    context = RequestContext(
        prompt_text="Question: 1 + 1\n\n", headers={"x-sim-role": "coordinator"}
    )
    session = await backend.start([], GREEDY, prompt_logprobs=False, context=context)
    assert (await session.step()).text == "Goal:"
    sampled = SamplingParams(max_new_tokens=5, do_sample=True, seed=7)
    session = await backend.start(
        [], sampled, prompt_logprobs=False, context=RequestContext(prompt_text="2 + 2")
    )
    assert session.seed == 7
