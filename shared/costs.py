"""The cost model: FLOPs and money of model calls, and the worst case of a job's plan.

FLOPs = 2 · parameters · tokens, generated and prompt (prefill) kept apart. Money = per-model
price per million input and output tokens, prompt tokens the engine served from its prefix cache
at the cached-prompt price. Prices come from the price table (:mod:`shared.prices`), as the job
snapshotted them at admission. Everything is ``Decimal``. See docs/architecture.md,
'Cost model'.

The worst case bounds what a job can cost before it runs, so admission can reserve it. Without
a tokenizer in the API, prompt tokens are bounded by UTF-8 bytes: every BPE token of the models
we serve covers at least one byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from shared.db.models import Policy
from shared.engines.base import ModelProfile

MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class CallCost:
    flops_prompt: Decimal
    flops_generated: Decimal
    cost: Decimal

    @property
    def flops(self) -> Decimal:
        return self.flops_prompt + self.flops_generated


def call_cost(
    profile: ModelProfile, prompt_tokens: int, generated_tokens: int, cached_tokens: int = 0
) -> CallCost:
    """A call's FLOPs and money. Prompt FLOPs count the computed prompt tokens: the
    ``cached_tokens`` the engine served from its prefix cache were computed by an earlier call
    (and counted there); money charges them at the cached price."""
    params = Decimal(profile.parameters)
    cached = min(max(cached_tokens, 0), prompt_tokens)
    cached_price = profile.price_cached_input_per_mtok
    if cached_price is None:
        cached_price = profile.price_input_per_mtok
    return CallCost(
        flops_prompt=2 * params * (prompt_tokens - cached),
        flops_generated=2 * params * generated_tokens,
        cost=(
            profile.price_input_per_mtok * (prompt_tokens - cached)
            + cached_price * cached
            + profile.price_output_per_mtok * generated_tokens
        )
        / MILLION,
    )


@dataclass(frozen=True)
class Profiles:
    """The model and prices behind each role: each role's calls are priced with its own.

    The scorer runs the executor model's forward pass, on the executor's engine unless it has
    one of its own (then with that engine's prices).
    """

    coordinator: ModelProfile
    executor: ModelProfile
    scorer: ModelProfile | None = None

    @property
    def scoring(self) -> ModelProfile:
        return self.scorer or self.executor


@dataclass(frozen=True)
class Plan:
    """What a job may do: its levels, the policy's fixed level, the answer budget."""

    policy: Policy
    levels: tuple[int, ...]  # cumulative insight-token budgets, levels[0] == 0
    max_answer_tokens: int
    fixed_level: int | None = None

    @property
    def last_level(self) -> int:
        """The highest level the plan can reach."""
        if self.policy is Policy.SLM_ONLY:
            return 0
        if self.policy is Policy.FIXED_LEVEL:
            assert self.fixed_level is not None
            return self.fixed_level
        return len(self.levels) - 1

    @property
    def scored(self) -> bool:
        return self.policy is Policy.TANDEM


def prompt_token_bound(text: str, template_overhead_tokens: int) -> int:
    return len(text.encode("utf-8")) + template_overhead_tokens


def worst_case_cost(
    plan: Plan,
    profiles: Profiles,
    question: str,
    template_overhead_tokens: int,
    *,
    scored_level: int | None = None,
) -> Decimal:
    """The most the plan can cost: every level's insights, every scoring pass, the full answer.

    Admission reserves it for the whole plan. The scorer, having scored ``scored_level``, asks
    it of the plan cut after the next level (``levels[: scored_level + 2]``) to learn whether
    going on still fits the reservation: then only what follows ``scored_level`` counts.
    """
    question_bound = prompt_token_bound(question, template_overhead_tokens)
    if plan.policy is Policy.LLM_ONLY:
        return call_cost(profiles.coordinator, question_bound, plan.max_answer_tokens).cost
    first = 0 if scored_level is None else scored_level + 1
    total = Decimal(0)
    for level in range(max(first, 1), plan.last_level + 1):
        total += call_cost(
            profiles.coordinator,
            question_bound + plan.levels[level - 1],
            plan.levels[level] - plan.levels[level - 1],
        ).cost
    if plan.scored:
        for level in range(first, plan.last_level + 1):
            total += call_cost(profiles.scoring, question_bound + plan.levels[level], 1).cost
    total += call_cost(
        profiles.executor, question_bound + plan.levels[plan.last_level], plan.max_answer_tokens
    ).cost
    return total
