"""One extension of the coordinator's insights, as jobs and ``tandem classifier collect`` both
run it: the family's insight prompt continued up to a token budget, stopped at the family's
end-of-insights marker."""

from __future__ import annotations

from dataclasses import dataclass

from shared.db.models import Domain
from shared.engines.base import EngineClient, Generation
from shared.prompts import end_of_insights, family_of, insight_prompt

# Finish reasons that mean the coordinator ended its insights itself (not at the budget).
FINISHED_REASONS = frozenset({"eos_token", "stop_sequence"})


@dataclass(frozen=True)
class Extension:
    generation: Generation
    text: str  # the new insight text, the end marker cut off
    finished: bool  # the coordinator wrote all it had to say


async def extend_insights(
    client: EngineClient, question: str, insights: str, domain: Domain | str, budget: int
) -> Extension:
    """``client`` (the coordinator's engine) continues ``insights`` by at most ``budget`` tokens."""
    family = family_of(client.profile.name)
    marker = end_of_insights(family)
    generation = await client.generate(
        insight_prompt(question, insights, domain, family), max_new_tokens=budget, stop=[marker]
    )
    finished = generation.finish_reason in FINISHED_REASONS or marker in generation.text
    return Extension(generation, generation.text.split(marker, 1)[0], finished)
