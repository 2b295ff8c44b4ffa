"""Input checks every domain's schemas share: text Postgres can store, JSON it can echo back.

Postgres rejects NUL in text and cannot encode a lone UTF-16 surrogate (valid in a JSON string
escape, ``"\\ud800"``, but not in UTF-8); JSON nested deeper than the response serialiser's
recursion limit would be stored and then make every read of it fail. Each is refused here, as
a 422 naming the field, before anything is written.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator

MAX_JSON_DEPTH = 32  # far above any real metadata, far below the serialiser's limit (255)


def _bad_character(value: str) -> str | None:
    if "\x00" in value:
        return "NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "unpaired surrogate characters (not valid UTF-8)"
    return None


def storable_text(value: str) -> str:
    """Text Postgres can store: no NUL, valid UTF-8."""
    problem = _bad_character(value)
    if problem is not None:
        raise ValueError(f"must not contain {problem}")
    return value


def storable_json(value: Any) -> Any:
    """JSON of bounded depth whose every key and string is storable text."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"must not be nested more than {MAX_JSON_DEPTH} levels deep")
        if isinstance(node, dict):
            for key, item in node.items():
                storable_text(str(key))
                stack.append((item, depth + 1))
        elif isinstance(node, list):
            stack.extend((item, depth + 1) for item in node)
        elif isinstance(node, str):
            storable_text(node)
    return value


StorableText = Annotated[str, AfterValidator(storable_text)]
StorableJson = Annotated[dict[str, Any], AfterValidator(storable_json)]
