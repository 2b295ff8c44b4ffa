"""The subset of OpenAI's chat completion shapes the front door speaks."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from shared.db.models import Domain
from shared.money import Amount


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "developer", "tool"]
    # A string, or parts of which the text ones are read (images and the like are not).
    content: str | list[dict[str, Any]] | None = None

    @field_validator("content")
    @classmethod
    def _text_parts_hold_text(
        cls, content: str | list[dict[str, Any]] | None
    ) -> str | list[dict[str, Any]] | None:
        # Else a text part of null or 5 would be asked as the question "None" or "5".
        for part in content if isinstance(content, list) else []:
            if part.get("type") == "text" and not isinstance(part.get("text"), str):
                raise ValueError("a text part needs its text as a string")
        return content


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: StrictBool = Field(
        False, description="Send a last chunk with `usage` (and empty `choices`) before [DONE]."
    )


class ChatCompletionRequest(BaseModel):
    """The subset of OpenAI's request Tandem honours; unknown OpenAI fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(..., min_length=1, description="'tandem' or 'tandem-<policy>'.")
    messages: list[ChatMessage] = Field(..., min_length=1)
    max_tokens: StrictInt | None = Field(None, gt=0)
    max_completion_tokens: StrictInt | None = Field(None, gt=0)
    # One job answers once: more choices would be as many jobs, each charged; refused rather
    # than silently answered with one.
    n: StrictInt | None = Field(None, ge=1, le=1, description="Choices to generate: only 1.")
    stream: StrictBool | None = Field(
        False, description="Answer as OpenAI's chat.completion.chunk server-sent events."
    )
    stream_options: StreamOptions | None = None
    domain: Domain = Field(Domain.GENERAL, description="Tandem extension (extra_body).")
    max_cost: Amount | None = Field(None, gt=0, description="Tandem extension (extra_body).")


class ChatChoiceMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int
    message: ChatChoiceMessage
    finish_reason: Literal["stop", "length"]


class ChatUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: ChatUsage
    tandem: dict[str, Any] = Field(description="The Tandem job behind the answer.")


class ChunkDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    # The executor's text as it is generated, before the answer extracted from it (the field
    # reasoning models' streams use); left out of chunks that carry none.
    reasoning_content: str | None = Field(None, exclude_if=lambda value: value is None)


class ChunkChoice(BaseModel):
    index: int = 0
    delta: ChunkDelta
    finish_reason: Literal["stop", "length"] | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """One ``data:`` message of a streamed completion."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: ChatUsage | None = None
    tandem: dict[str, Any] | None = Field(
        None, description="The Tandem job behind the answer (first and last chunks)."
    )


class OpenAIErrorBody(BaseModel):
    message: str
    type: str = Field(description="OpenAI's error type, e.g. invalid_request_error.")
    param: str | None = Field(description="The request field at fault, if one is.")
    code: str | None = Field(description="e.g. insufficient_quota, model_not_found.")


class OpenAIErrorOut(BaseModel):
    """Every error of the OpenAI routes, in OpenAI's shape."""

    error: OpenAIErrorBody
