"""The offline cost model credits the engine's prefix cache: cached prompt tokens are not
computed (no FLOPs) and are charged at the cached price."""

from __future__ import annotations

from decimal import Decimal

from shared.engines.base import ModelProfile
from tandem.classifier.collected import Call
from tandem.classifier.policies import CostModel, coordinator_call, executor_call

COORDINATOR = ModelProfile("big", 1000, Decimal("2"), Decimal("6"), Decimal("0.5"))
EXECUTOR = ModelProfile("small", 100, Decimal("1"), Decimal("3"), Decimal("0.25"))
COSTS = CostModel(COORDINATOR, EXECUTOR, EXECUTOR)


def test_cached_prompt_tokens_cost_no_flops_and_the_cached_price() -> None:
    cold = coordinator_call(Call(40, 10)) + executor_call(Call(50, 20))
    warm = coordinator_call(Call(40, 10, cached_tokens=30)) + executor_call(
        Call(50, 20, cached_tokens=50)
    )
    assert COSTS.flops_generated(cold) == COSTS.flops_generated(warm) == 2 * (1000 * 10 + 100 * 20)
    assert COSTS.flops_prompt(cold) == 2 * (1000 * 40 + 100 * 50)
    assert COSTS.flops_prompt(warm) == 2 * (1000 * 10)  # the executor's prompt was all cached
    million = Decimal(1_000_000)
    assert COSTS.money(cold) == (40 * 2 + 10 * 6 + 50 * 1 + 20 * 3) / million
    assert (
        COSTS.money(warm)
        == (10 * 2 + Decimal("30") * Decimal("0.5") + 10 * 6 + 50 * Decimal("0.25") + 20 * 3)
        / million
    )
