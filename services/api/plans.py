"""From a request to an admitted plan: the policy's plan, its worst case, and how it shrinks.

Shrinking keeps the policy and drops the highest levels first (the coordinator's insights are
the expensive part), then halves the answer budget down to the configured minimum.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from itertools import pairwise

from services.api.db import unit_of_work
from services.api.jobs.errors import LevelsNotCalibrated
from services.api.settings import ApiSettings
from shared.classifier import repository as classifiers
from shared.classifier.rules import calibrated_for
from shared.classifier.schedules import Calibrated, ScheduleCache, calibrated_of
from shared.costs import Plan, Profiles, worst_case_cost
from shared.db.models import Domain, Policy
from shared.errors import ValidationFailed
from shared.prices import configured_profiles
from shared.prompts import family_of, prompt_version_of, template_overhead_tokens


@dataclass(frozen=True)
class Template:
    version: str
    overhead_tokens: int


def load_profiles() -> Profiles:
    """Each role's model as its engine is configured (no model client), at the environment's
    prices: the price table's seed. The app charges the table's (:mod:`services.api.pricecache`)."""
    return configured_profiles()


def template_for(domain: Domain, profiles: Profiles) -> Template:
    """The version of the layout the configured coordinator is prompted with, and the templates'
    overhead bound for ``domain``."""
    version = prompt_version_of(family_of(profiles.coordinator.name))
    return Template(version, template_overhead_tokens(domain))


_schedule_caches: dict[tuple[str, float], ScheduleCache] = {}


def schedule_cache(settings: ApiSettings) -> ScheduleCache:
    """This process's copy of the active classifier's schedule, one per database (re-read every
    ``classifier_refresh_s``, off the admission statement)."""
    key = (settings.database_url, settings.classifier_refresh_s)
    cache = _schedule_caches.get(key)
    if cache is None:

        def read() -> Calibrated | None:
            with unit_of_work(settings) as session:
                return calibrated_of(classifiers.active_schedule(session))

        cache = _schedule_caches[key] = ScheduleCache(read, settings.classifier_refresh_s)
    return cache


def schedule(
    settings: ApiSettings,
    domain: Domain,
    requested: list[int] | None,
    calibrated: Calibrated | None = None,
    policy: Policy = Policy.TANDEM,
) -> tuple[int, ...]:
    """The job's levels: its own, else the active classifier's schedule, else its domain's,
    else the default schedule. A tandem job's own levels must be ones the active classifier
    was calibrated on (``calibrated``: None while the active version names no schedule)."""
    if requested is None:
        if calibrated is not None:
            return calibrated.levels
        return tuple(settings.domain_levels.get(domain.value, settings.levels))
    if not requested or requested[0] != 0:
        raise ValidationFailed("levels must start with 0 (the executor alone)", field="levels")
    if any(b <= a for a, b in pairwise(requested)):
        raise ValidationFailed("levels must be strictly increasing", field="levels")
    if requested[-1] > settings.max_insight_tokens:
        raise ValidationFailed(
            f"levels may not exceed {settings.max_insight_tokens} insight tokens", field="levels"
        )
    if (
        policy is Policy.TANDEM
        and calibrated is not None
        and not calibrated_for(calibrated.levels, requested)
    ):
        raise LevelsNotCalibrated(requested, calibrated.version, calibrated.levels)
    return tuple(requested)


def requested_plan(
    settings: ApiSettings,
    domain: Domain,
    policy: Policy,
    level: int | None,
    max_levels: int | None,
    max_answer_tokens: int | None,
    levels_requested: list[int] | None = None,
    calibrated: Calibrated | None = None,
) -> Plan:
    levels = schedule(settings, domain, levels_requested, calibrated, policy)
    top = len(levels) - 1
    if policy is Policy.FIXED_LEVEL:
        if level is None:
            raise ValidationFailed("policy fixed_level needs a level", field="level")
        if not 0 <= level <= top:
            raise ValidationFailed(f"level must be between 0 and {top}", field="level")
    elif level is not None:
        raise ValidationFailed("level is only allowed with policy fixed_level", field="level")
    if max_levels is not None:
        if not 0 <= max_levels <= top:
            raise ValidationFailed(f"max_levels must be between 0 and {top}", field="max_levels")
        levels = levels[: max_levels + 1]
    # 0 is a value to check, not "unset" (it read as the largest answer budget).
    answer = settings.max_answer_tokens if max_answer_tokens is None else max_answer_tokens
    if not settings.min_answer_tokens <= answer <= settings.max_answer_tokens:
        raise ValidationFailed(
            f"max_answer_tokens must be between {settings.min_answer_tokens} and "
            f"{settings.max_answer_tokens}",
            field="max_answer_tokens",
        )
    return Plan(policy=policy, levels=levels, max_answer_tokens=answer, fixed_level=level)


def shrunk_plans(plan: Plan, min_answer_tokens: int) -> Iterator[Plan]:
    """Ever cheaper variants of ``plan``, the plan itself first."""
    yield plan
    current = plan
    if plan.policy is Policy.TANDEM:
        while len(current.levels) > 1:
            current = replace(current, levels=current.levels[:-1])
            yield current
    answer = current.max_answer_tokens
    while answer > min_answer_tokens:
        answer = max(answer // 2, min_answer_tokens)
        yield replace(current, max_answer_tokens=answer)


def cost_of(plan: Plan, profiles: Profiles, question: str, template: Template) -> Decimal:
    return worst_case_cost(plan, profiles, question, template.overhead_tokens)
