"""OpenAI's model object and list, with a ``tandem`` extension naming the policy behind each."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from shared.db.models import Policy


class ModelPolicy(BaseModel):
    policy: Policy
    description: str


class ModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(description="When the model became available to this tenant.")
    owned_by: str = "tandem"
    tandem: ModelPolicy


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]
