"""Each answering policy replayed offline on a collected question: was it right, what did it cost.

Nothing here calls an engine: the collected file holds every call a policy could make, with the
engines' own token counts. Tandem is replayed with the scorer's own decision function
(:func:`shared.classifier.rules.decide_with`), so the offline rule is the serving rule: stop at
the first level the version's rule finds sufficient (its score reaches its threshold, or, under
the lookahead rule, no later level is worth its cost), when the insights finished, or at the last
level; otherwise answer at the best-scoring level so far. (The serving path may also
stop when the next level no longer fits a job's reservation; offline there is no reservation.)

Cost follows :mod:`shared.costs`: FLOPs = 2 · parameters · tokens, generated and prompt kept
apart; money from each model's prices. Prompt tokens the engine served from its prefix cache
(recorded per call) were not computed: prompt FLOPs count only the computed ones, and money
charges the cached ones at the cached price. That is what prefix reuse buys a policy that
continues earlier work (each level re-sends the question and the insights so far). The scoring
passes (one forward pass of the executor's model over its prompt, one generated token) are
charged to Tandem.

Each policy is charged as if it ran alone on the engines. Collect makes every policy's calls
for a question one after another, so a call's recorded cache hit may come from another
policy's call: the executor's answer at a level reuses the scoring pass over the same prompt
(only Tandem scores), and the coordinator alone reuses the insight prompt its extensions sent
(``Q: ...\nI:`` begins the coordinator-alone prompt too). A policy keeps the hits its own
earlier calls explain (an extension continuing the previous one, Tandem's scoring passes
continuing each other, Tandem's answer reusing its own scoring pass); a call that would be the
policy's first on its engine keeps at most what that engine served the question's first
request in the collect run, which only other questions' requests could have filled (the
prompt layout every question shares).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from decimal import Decimal

from shared.classifier.rules import LookaheadRule, StopRule, decide_with
from shared.costs import call_cost
from shared.engines.base import ModelProfile
from tandem.classifier.collected import Call, CollectedQuestion, CollectHeader, Featurizer


@dataclass(frozen=True)
class Spend:
    """Tokens one question used under a policy, per model and kind."""

    coordinator_prompt: int = 0
    coordinator_generated: int = 0
    executor_prompt: int = 0
    executor_generated: int = 0
    scorer_prompt: int = 0
    scorer_generated: int = 0
    # Of the prompt tokens above, those served from the engine's prefix cache.
    coordinator_cached: int = 0
    executor_cached: int = 0
    scorer_cached: int = 0

    def __add__(self, other: Spend) -> Spend:
        return Spend(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(Spend)))


def coordinator_call(call: Call) -> Spend:
    return Spend(
        coordinator_prompt=call.prompt_tokens,
        coordinator_generated=call.generated_tokens,
        coordinator_cached=call.cached_tokens,
    )


def executor_call(call: Call) -> Spend:
    return Spend(
        executor_prompt=call.prompt_tokens,
        executor_generated=call.generated_tokens,
        executor_cached=call.cached_tokens,
    )


def scorer_call(call: Call) -> Spend:
    return Spend(
        scorer_prompt=call.prompt_tokens,
        scorer_generated=call.generated_tokens,
        scorer_cached=call.cached_tokens,
    )


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
        """Computed prompt tokens only: the prefix cache served the others."""
        return 2.0 * (
            self.coordinator.parameters * (spend.coordinator_prompt - spend.coordinator_cached)
            + self.executor.parameters * (spend.executor_prompt - spend.executor_cached)
            + self.scorer.parameters * (spend.scorer_prompt - spend.scorer_cached)
        )

    def flops_total(self, spend: Spend) -> float:
        """Prompt and generated FLOPs together: what the hardware computes."""
        return self.flops_generated(spend) + self.flops_prompt(spend)

    def money(self, spend: Spend) -> Decimal:
        return (
            call_cost(
                self.coordinator,
                spend.coordinator_prompt,
                spend.coordinator_generated,
                spend.coordinator_cached,
            ).cost
            + call_cost(
                self.executor,
                spend.executor_prompt,
                spend.executor_generated,
                spend.executor_cached,
            ).cost
            + call_cost(
                self.scorer, spend.scorer_prompt, spend.scorer_generated, spend.scorer_cached
            ).cost
        )

    def metric(self, name: str) -> Callable[[Spend], float]:
        """The cost measure thresholds are fitted against: ``flops`` (generated, the paper's),
        ``total-flops`` (prompt + generated) or ``money``."""
        if name == "flops":
            return self.flops_generated
        if name == "total-flops":
            return self.flops_total
        if name == "money":
            return lambda spend: float(self.money(spend))
        raise ValueError(f"unknown cost measure {name!r}; use flops, total-flops or money")


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


def standalone(call: Call, shared_prefix: int) -> Call:
    """``call`` as its policy's first call on the engine: cached at most ``shared_prefix``."""
    return replace(call, cached_tokens=min(call.cached_tokens, shared_prefix))


def coordinator_shared_prefix(question: CollectedQuestion) -> int:
    """Prompt tokens the coordinator's engine served the question's first request (the level-1
    extension; the coordinator alone when there is none) from other questions' requests."""
    first = question.levels[1].extension if len(question.levels) > 1 else None
    if first is not None:
        return first.cached_tokens
    alone = question.coordinator_alone
    return 0 if alone is None else alone.call.cached_tokens


def executor_shared_prefix(question: CollectedQuestion) -> int:
    """The same for the executor's engine: its first request is the level-0 scoring pass when
    the scorer shares the engine, else the level-0 answer; the smaller covers both."""
    first = question.levels[0]
    return min(first.scoring.cached_tokens, first.answer.call.cached_tokens)


def coordinator_alone(question: CollectedQuestion) -> Outcome:
    """The ``llm_only`` policy; its prompt's cache hit from the extensions is not its own."""
    alone = question.coordinator_alone
    if alone is None:
        raise ValueError(f"question {question.id} has no coordinator-alone answer")
    call = standalone(alone.call, coordinator_shared_prefix(question))
    return Outcome(alone.correct, coordinator_call(call))


def fixed_level(question: CollectedQuestion, level: int) -> Outcome:
    """The ``fixed_level`` policy (level 0: the executor alone). It does not score, so its
    answer pays for the prompt the scoring pass had left in the cache during collect."""
    result = question.levels[level]
    answer = standalone(result.answer.call, executor_shared_prefix(question))
    spend = extensions_up_to(question, level) + executor_call(answer)
    return Outcome(result.answer.correct, spend, level, level)


def tandem_levels(
    rule: StopRule,
    scores: Sequence[float],
    vectors: Sequence[Sequence[float]],
    budgets: Sequence[int],
    finished: Sequence[bool],
) -> tuple[int, int]:
    """(the level the coordinator stopped at, the level the executor answers at)."""
    for level in range(len(scores)):
        decision = decide_with(
            rule,
            list(scores[: level + 1]),
            vectors[level],
            budgets,
            insights_finished=finished[level],
            next_affordable=True,
        )
        if decision.stop:
            assert decision.chosen_level is not None
            return level, decision.chosen_level
    raise AssertionError("the last level always stops")  # pragma: no cover


def tandem(
    question: CollectedQuestion,
    scores: Sequence[float],
    rule: StopRule,
    vectors: Sequence[Sequence[float]] | None = None,
) -> Outcome:
    """Tandem under a version's stop rule (thresholds or lookahead), replayed level by level;
    ``vectors`` are the question's feature vectors per level when already computed."""
    results = question.levels
    if vectors is None:
        # Only the lookahead rule reads the features; the threshold rule needs the score alone.
        lookahead = isinstance(rule, LookaheadRule)
        vectors = Featurizer().vectors(question) if lookahead else [[] for _ in results]
    stop, chosen = tandem_levels(
        rule, scores, vectors, [r.budget for r in results], [r.finished for r in results]
    )
    result = results[chosen]
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
