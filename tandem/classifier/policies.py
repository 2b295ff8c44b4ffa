"""Each answering policy replayed offline on a collected question: was it right, what did it cost.

Nothing here calls an engine: the collected file holds every call a policy could make, with the
engines' own token counts. Tandem is replayed with the scorer's own decision function
(:func:`services.scorer.decision.decide`), so the offline rule is the serving rule: stop at the
first level whose score reaches its threshold, when the insights finished, or at the last level;
without a sufficient score, answer at the best-scoring level so far. (The serving path may also
stop when the next level no longer fits a job's reservation; offline there is no reservation.)

Cost follows :mod:`shared.costs`: FLOPs = 2 · parameters · tokens, generated and prompt kept
apart; money from each model's prices. The scoring passes (one forward pass of the executor's
model over its prompt, one generated token) are charged to Tandem.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from decimal import Decimal

from services.scorer.decision import decide
from shared.costs import call_cost
from shared.engines.base import ModelProfile
from tandem.classifier.collected import Call, CollectedQuestion, CollectHeader


@dataclass(frozen=True)
class Spend:
    """Tokens one question used under a policy, per model and kind."""

    coordinator_prompt: int = 0
    coordinator_generated: int = 0
    executor_prompt: int = 0
    executor_generated: int = 0
    scorer_prompt: int = 0
    scorer_generated: int = 0

    def __add__(self, other: Spend) -> Spend:
        return Spend(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(Spend)))


def coordinator_call(call: Call) -> Spend:
    return Spend(coordinator_prompt=call.prompt_tokens, coordinator_generated=call.generated_tokens)


def executor_call(call: Call) -> Spend:
    return Spend(executor_prompt=call.prompt_tokens, executor_generated=call.generated_tokens)


def scorer_call(call: Call) -> Spend:
    return Spend(scorer_prompt=call.prompt_tokens, scorer_generated=call.generated_tokens)


@dataclass(frozen=True)
class CostModel:
    coordinator: ModelProfile
    executor: ModelProfile
    scorer: ModelProfile

    @classmethod
    def from_header(cls, header: CollectHeader) -> CostModel:
        """The profiles the file was collected under (configured parameters and prices)."""
        return cls(header.coordinator.profile, header.executor.profile, header.scorer.profile)

    def flops_generated(self, spend: Spend) -> float:
        """The paper's cost: 2 · parameters · generated tokens, over every model."""
        return 2.0 * (
            self.coordinator.parameters * spend.coordinator_generated
            + self.executor.parameters * spend.executor_generated
            + self.scorer.parameters * spend.scorer_generated
        )

    def flops_prompt(self, spend: Spend) -> float:
        return 2.0 * (
            self.coordinator.parameters * spend.coordinator_prompt
            + self.executor.parameters * spend.executor_prompt
            + self.scorer.parameters * spend.scorer_prompt
        )

    def money(self, spend: Spend) -> Decimal:
        return (
            call_cost(self.coordinator, spend.coordinator_prompt, spend.coordinator_generated).cost
            + call_cost(self.executor, spend.executor_prompt, spend.executor_generated).cost
            + call_cost(self.scorer, spend.scorer_prompt, spend.scorer_generated).cost
        )

    def metric(self, name: str) -> Callable[[Spend], float]:
        """The cost measure thresholds are fitted against: ``flops`` (generated) or ``money``."""
        if name == "flops":
            return self.flops_generated
        if name == "money":
            return lambda spend: float(self.money(spend))
        raise ValueError(f"unknown cost measure {name!r}; use flops or money")


@dataclass(frozen=True)
class Outcome:
    correct: bool
    spend: Spend
    level: int | None = None  # the level whose insights the executor answered with
    stopped_at: int | None = None  # the last level the coordinator reached
    scoring_passes: int = 0


def extensions_up_to(question: CollectedQuestion, level: int) -> Spend:
    """The coordinator calls that produced the insights of ``level``."""
    total = Spend()
    for result in question.levels[1 : level + 1]:
        if result.extension is not None:
            total += coordinator_call(result.extension)
    return total


def scoring_up_to(question: CollectedQuestion, level: int) -> Spend:
    total = Spend()
    for result in question.levels[: level + 1]:
        total += scorer_call(result.scoring)
    return total


def coordinator_alone(question: CollectedQuestion) -> Outcome:
    alone = question.coordinator_alone
    if alone is None:
        raise ValueError(f"question {question.id} has no coordinator-alone answer")
    return Outcome(alone.correct, coordinator_call(alone.call))


def fixed_level(question: CollectedQuestion, level: int) -> Outcome:
    """The ``fixed_level`` policy (level 0: the executor alone)."""
    result = question.levels[level]
    spend = extensions_up_to(question, level) + executor_call(result.answer.call)
    return Outcome(result.answer.correct, spend, level, level)


def threshold_at(thresholds: Sequence[float], level: int) -> float:
    """tau[level]; levels past the fitted list reuse the last (as the serving runtime does)."""
    return thresholds[min(level, len(thresholds) - 1)]


def tandem_levels(
    scores: Sequence[float], thresholds: Sequence[float], finished: Sequence[bool]
) -> tuple[int, int]:
    """(the level the coordinator stopped at, the level the executor answers at)."""
    last = len(scores) - 1
    for level in range(last + 1):
        decision = decide(
            list(scores[: level + 1]),
            threshold_at(thresholds, level),
            last_level=last,
            insights_finished=finished[level],
            next_affordable=True,
        )
        if decision.stop:
            assert decision.chosen_level is not None
            return level, decision.chosen_level
    raise AssertionError("the last level always stops")  # pragma: no cover


def tandem(
    question: CollectedQuestion, scores: Sequence[float], thresholds: Sequence[float]
) -> Outcome:
    stop, chosen = tandem_levels(scores, thresholds, [r.finished for r in question.levels])
    result = question.levels[chosen]
    spend = (
        extensions_up_to(question, stop)
        + scoring_up_to(question, stop)
        + executor_call(result.answer.call)
    )
    return Outcome(result.answer.correct, spend, chosen, stop, scoring_passes=stop + 1)


def escalates(question: CollectedQuestion, confidence_threshold: float) -> bool:
    """The cascade hands a question to the coordinator when the executor was unsure."""
    confidence = question.levels[0].answer.mean_logprob
    return confidence is None or confidence < confidence_threshold


def cascade(question: CollectedQuestion, confidence_threshold: float) -> Outcome:
    """Executor first; below the confidence threshold, the coordinator answers alone too."""
    first = fixed_level(question, 0)
    if not escalates(question, confidence_threshold):
        return first
    second = coordinator_alone(question)
    return Outcome(second.correct, first.spend + second.spend, None, None)
