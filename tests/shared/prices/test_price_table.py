"""The price table on real Postgres (each test rolled back): seeding from the environment once,
history and the price in force at a time, validation, the job's snapshot, cached tokens."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from services.scorer.service import next_level_affordable
from shared.costs import Profiles, call_cost
from shared.db.models import Job, Role
from shared.engines.base import ModelProfile
from shared.errors import ValidationFailed
from shared.prices import (
    configured_profiles,
    job_profiles,
    listing,
    priced,
    priced_profiles,
    seed_from_environment,
    set_price,
    snapshot,
)
from shared.prices import repository as repo
from shared.prices.errors import PriceExists

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def configured(price_in: str = "0.5", price_out: str = "1.5") -> Profiles:
    """Models of their own, so that rows other tests (or the API) wrote do not matter."""
    tag = uuid.uuid4().hex[:8]
    return Profiles(
        coordinator=ModelProfile(f"llm-{tag}", 1000, Decimal(price_in), Decimal(price_out)),
        executor=ModelProfile(f"slm-{tag}", 100, Decimal("0.05"), Decimal("0.15")),
    )


def test_the_environment_seeds_each_model_once_then_the_table_decides(
    db_session: Session,
) -> None:
    profiles = configured()
    seeded = seed_from_environment(db_session, profiles)
    assert sorted(r.model for r in seeded) == sorted(
        [profiles.coordinator.name, profiles.executor.name]
    )
    assert {r.source for r in seeded} == {"environment"}
    llm = next(r for r in seeded if r.model == profiles.coordinator.name)
    assert (llm.prompt_per_mtok, llm.generated_per_mtok) == (Decimal("0.5"), Decimal("1.5"))
    assert llm.cached_prompt_per_mtok == Decimal("0.5")  # no discount known to the environment
    # Once seeded, other environment prices change nothing: the table is the source of truth.
    changed = Profiles(
        coordinator=ModelProfile(profiles.coordinator.name, 1000, Decimal(9), Decimal(9)),
        executor=profiles.executor,
    )
    assert seed_from_environment(db_session, changed) == []
    current = priced_profiles(db_session, changed)
    assert current.coordinator.price_input_per_mtok == Decimal("0.5")
    assert current.coordinator.price_id == str(llm.id)
    assert current.coordinator.parameters == 1000  # the model itself stays as configured
    assert len(repo.history(db_session, profiles.coordinator.name)) == 1


def test_pricing_a_configured_model_with_no_row_seeds_it_first(db_session: Session) -> None:
    profiles = configured("2", "3")
    current = priced_profiles(db_session, profiles)
    assert current.executor.price_id is not None
    assert current.coordinator.price_output_per_mtok == Decimal(3)
    assert {r.model for r, _ in listing(db_session, profiles.coordinator.name)} == {
        profiles.coordinator.name
    }


def test_history_is_kept_and_the_latest_row_not_after_t_is_in_force(db_session: Session) -> None:
    profiles = configured()
    model = profiles.coordinator.name
    first = set_price(
        db_session,
        model=model,
        prompt_per_mtok=Decimal(1),
        generated_per_mtok=Decimal(2),
        effective_from=T0,
        new_model=True,
    )
    second = set_price(
        db_session,
        model=model,
        prompt_per_mtok=Decimal(3),
        generated_per_mtok=Decimal(4),
        cached_prompt_per_mtok=Decimal("0.75"),
        effective_from=T0 + timedelta(days=10),
    )
    future = set_price(
        db_session,
        model=model,
        prompt_per_mtok=Decimal(5),
        generated_per_mtok=Decimal(6),
        effective_from=datetime.now(UTC) + timedelta(days=365),
    )
    assert repo.in_force(db_session, T0 - timedelta(seconds=1)).get(model) is None
    assert repo.in_force(db_session, T0)[model].id == first.id
    assert repo.in_force(db_session, T0 + timedelta(days=9))[model].id == first.id
    assert repo.in_force(db_session, T0 + timedelta(days=10))[model].id == second.id
    assert repo.in_force(db_session)[model].id == second.id  # the future row is not yet
    rows = listing(db_session, model)
    assert [r.id for r, _ in rows] == [future.id, second.id, first.id]  # newest first
    assert [in_force for _, in_force in rows] == [False, True, False]
    # The first row is unchanged by the later ones: older jobs' prices stay readable.
    assert (first.prompt_per_mtok, first.cached_prompt_per_mtok) == (Decimal(1), Decimal(1))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"prompt_per_mtok": Decimal(-1)}, "prompt_per_mtok"),
        ({"generated_per_mtok": Decimal("NaN")}, "generated_per_mtok"),
        ({"generated_per_mtok": Decimal("2000000")}, "generated_per_mtok"),
        ({"prompt_per_mtok": Decimal("0.0000000000001")}, "prompt_per_mtok"),
        ({"cached_prompt_per_mtok": Decimal(2)}, "cached_prompt_per_mtok"),
        ({"cached_prompt_per_mtok": Decimal(-1)}, "cached_prompt_per_mtok"),
        ({"effective_from": datetime(2026, 1, 1)}, "effective_from"),
        ({"model": "no-such-model"}, "model"),
        ({"model": " "}, "model"),
    ],
)
def test_bad_prices_are_refused_with_the_field_and_nothing_written(
    db_session: Session, change: dict[str, object], field: str
) -> None:
    profiles = configured()
    fields: dict[str, object] = {
        "model": profiles.coordinator.name,
        "prompt_per_mtok": Decimal(1),
        "generated_per_mtok": Decimal(1),
        "configured": profiles,
    } | change
    before = len(repo.history(db_session))
    with pytest.raises(ValidationFailed) as refused:
        set_price(db_session, **fields)  # type: ignore[arg-type]
    assert refused.value.field == field
    assert len(repo.history(db_session)) == before


def test_a_second_price_from_the_same_time_is_a_conflict(db_session: Session) -> None:
    model = configured().coordinator.name
    set_price(
        db_session,
        model=model,
        prompt_per_mtok=Decimal(1),
        generated_per_mtok=Decimal(1),
        effective_from=T0,
        new_model=True,
    )
    with pytest.raises(PriceExists):
        set_price(
            db_session,
            model=model,
            prompt_per_mtok=Decimal(2),
            generated_per_mtok=Decimal(2),
            effective_from=T0,
        )
    assert [r.prompt_per_mtok for r in repo.history(db_session, model)] == [Decimal(1)]


def test_cached_prompt_tokens_are_charged_at_the_cached_price() -> None:
    profile = ModelProfile("m", 10, Decimal(4), Decimal(8), price_cached_input_per_mtok=Decimal(1))
    cost = call_cost(profile, prompt_tokens=1000, generated_tokens=100, cached_tokens=600)
    assert cost.cost == (400 * Decimal(4) + 600 * Decimal(1) + 100 * Decimal(8)) / 1_000_000
    assert cost.flops_prompt == 2 * 10 * 400  # cached tokens were computed by an earlier call
    # Without a cached price, cached tokens cost the prompt price; more than the prompt: capped.
    plain = ModelProfile("m", 10, Decimal(4), Decimal(8))
    assert call_cost(plain, 1000, 100, 600).cost == call_cost(plain, 1000, 100).cost
    assert call_cost(profile, 10, 0, 50).cost == 10 * Decimal(1) / 1_000_000


def test_a_jobs_snapshot_prices_its_roles_whatever_the_worker_is_configured_with() -> None:
    admitted = Profiles(
        coordinator=ModelProfile("llm", 1000, Decimal(1), Decimal(2), Decimal("0.5"), "p-1"),
        executor=ModelProfile("slm", 100, Decimal("0.1"), Decimal("0.2")),
    )
    kept = snapshot(admitted)
    assert kept["coordinator"] == {
        "model": "llm",
        "price_id": "p-1",
        "prompt": "1",
        "generated": "2",
        "cached_prompt": "0.5",
    }
    assert kept["scorer"] == {**kept["executor"]}  # the executor's model and prices
    worker = ModelProfile("llm", 1000, Decimal(7), Decimal(7))  # its environment says 7
    charged = priced(worker, kept, Role.COORDINATOR)
    assert (charged.price_input_per_mtok, charged.price_output_per_mtok) == (Decimal(1), Decimal(2))
    assert charged.price_cached_input_per_mtok == Decimal("0.5")
    assert priced(worker, None, Role.COORDINATOR) is worker  # admitted before snapshots
    both = job_profiles(Profiles(worker, worker), kept)
    assert both.scoring.price_input_per_mtok == Decimal("0.1")


def test_the_scorer_bounds_what_is_left_at_the_jobs_prices() -> None:
    configured = configured_profiles()
    free = Profiles(
        coordinator=ModelProfile(configured.coordinator.name, 1, Decimal(0), Decimal(0)),
        executor=ModelProfile(configured.executor.name, 1, Decimal(0), Decimal(0)),
    )
    job = Job(
        budget_id=uuid.uuid4(),
        levels=[0, 100, 500],
        max_answer_tokens=64,
        domain="math",
        reserved_amount=Decimal("1e-9"),
    )
    assert not next_level_affordable(job, "What is 2 + 2?", 0, Decimal(0))  # environment's
    job.prices = snapshot(free)  # admitted while the models were free
    assert next_level_affordable(job, "What is 2 + 2?", 0, Decimal(0))
