"""A model name no tenant may call."""

from __future__ import annotations

from shared.errors import NotFoundError


class ModelNotFound(NotFoundError):
    code = "model_not_found"

    def __init__(self, model: str, offered: list[str]) -> None:
        names = ", ".join(repr(name) for name in offered)
        super().__init__(f"model {model!r} does not exist; use one of {names}", field="model")
