"""Which model names an OpenAI client may send, and the job policy each one runs.

A model is a policy of the Tandem pipeline, not an engine: ``tandem`` runs the coordinator and
executor with cost-aware termination, the others its baselines. ``fixed_level`` is absent: it
needs a level, which OpenAI's request has no field for. Every active tenant may call every
model; the catalog is code, so listing it reads no database.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.api.models.errors import ModelNotFound
from services.api.models.schemas import ModelList, ModelOut, ModelPolicy
from shared.db.models import Policy, Tenant


@dataclass(frozen=True)
class Offer:
    id: str
    policy: Policy
    description: str


CATALOG: tuple[Offer, ...] = (
    Offer(
        "tandem",
        Policy.TANDEM,
        "The coordinator writes insights until the classifier judges them sufficient; the "
        "executor answers.",
    ),
    Offer("tandem-llm_only", Policy.LLM_ONLY, "The coordinator alone answers (a baseline)."),
    Offer("tandem-slm_only", Policy.SLM_ONLY, "The executor alone answers, without insights."),
)
BY_ID = {offer.id: offer for offer in CATALOG}


def offer_for(model: str) -> Offer:
    offer = BY_ID.get(model)
    if offer is None:
        raise ModelNotFound(model, list(BY_ID))
    return offer


def policy_for_model(model: str) -> Policy:
    return offer_for(model).policy


def model_view(tenant: Tenant, offer: Offer) -> ModelOut:
    return ModelOut(
        id=offer.id,
        created=int(tenant.created_at.timestamp()),
        tandem=ModelPolicy(policy=offer.policy, description=offer.description),
    )


def list_models(tenant: Tenant) -> ModelList:
    return ModelList(data=[model_view(tenant, offer) for offer in CATALOG])


def get_model(tenant: Tenant, model: str) -> ModelOut:
    return model_view(tenant, offer_for(model))
