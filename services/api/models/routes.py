"""``GET /v1/models`` and ``GET /v1/models/{id}``, as OpenAI's SDK (``client.models``) reads
them."""

from __future__ import annotations

from fastapi import APIRouter

from services.api.chat.schemas import OpenAIErrorOut
from services.api.deps import TenantDep
from services.api.models import service
from services.api.models.schemas import ModelList, ModelOut

router = APIRouter(
    prefix="/v1/models",
    tags=["openai"],
    responses={code: {"model": OpenAIErrorOut} for code in (401, 404, 429)},
)


@router.get("", response_model=ModelList)
async def list_models(tenant: TenantDep) -> ModelList:
    """The models this tenant may name in ``POST /v1/chat/completions``."""
    return service.list_models(tenant)


@router.get("/{model}", response_model=ModelOut)
async def get_model(model: str, tenant: TenantDep) -> ModelOut:
    """One model, or 404 ``model_not_found``."""
    return service.get_model(tenant, model)
