"""TGI's own OpenAPI document against ``tandem engine serve``: it speaks TGI as TGI documents it.

Schemathesis generates requests from the document (its coverage and fuzzing phases, bounded)
and runs every default check on each response; the simulator backend serves them (the
real-model backends share the routes). A failure fails the test unless :func:`tgi_reason`
names it, each with the reason TGI itself answers the same way or the document cannot be
checked as written. Server-sent event payloads are checked here against the document's
schemas, because schemathesis checks each event's envelope (``{"data", "event"}``) instead.

The document's quirks, handled on loading: it is headed ``openapi: 3.0.3`` but spells
``exclusiveMinimum`` as 3.1 does (a number), which 3.0 tools reject, so those are rewritten to
3.0's spelling with the same meaning; its ``example`` values are often strings where it types
integers (``"seed": "null"``, ``"max_new_tokens": "20"``), which TGI's deserializer rejects too,
so the examples phase is off.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

DOCUMENT = Path(__file__).with_name("tgi-openapi.json")

# TGI's own validation rules for values its document allows: TGI answers these with 422 too.
TGI_RULES = (
    "`max_new_tokens` must be strictly positive",  # the document allows 0
    "`truncate` must be strictly positive",  # the document allows 0
    "`top_p` must be > 0.0 and < 1.0",  # the document allows 1.0
    "`typical_p` must be > 0.0 and < 1.0",  # the document allows 1.0
    "`temperature` must be strictly positive",  # /v1/completions types it as any number
    "`repetition_penalty` must be strictly positive",
    "`frequency_penalty` must be >= -2.0 and <= 2.0",  # the document sets no maximum
    "`stop` supports up to",  # max_stop_sequences (4): /v1/completions says so in words only
    "`best_of`",  # bounded by max_best_of (1, see /info)
    "`top_n_tokens` must be >= 0 and <= 0",  # as TGI run with --max-top-n-tokens 0
    "`inputs` cannot be empty",
    "`inputs` tokens + `max_new_tokens` must be <=",  # max_total_tokens
    "`inputs` must have less than",  # max_input_tokens
    "grammar is not supported",  # as TGI run with --disable-grammar-support
    "Number of prompts exceeds the maximum allowed batch size",  # max_client_batch_size (1)
    "Template error",  # TGI's answer to chat or `suffix` for a model without a template
)


def _as_openapi_30(node: Any) -> Any:
    """Rewrite 3.1's numeric ``exclusiveMinimum`` (and maximum) to 3.0's boolean spelling."""
    if isinstance(node, dict):
        node = {key: _as_openapi_30(value) for key, value in node.items()}
        for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            value = node.get(exclusive)
            if isinstance(value, int | float) and not isinstance(value, bool):
                node[bound], node[exclusive] = value, True
        return node
    if isinstance(node, list):
        return [_as_openapi_30(value) for value in node]
    return node


def _as_json_schema(node: Any) -> Any:
    """OpenAPI 3.0's ``nullable`` as JSON Schema's null type, to check payloads ourselves."""
    if isinstance(node, dict):
        node = {key: _as_json_schema(value) for key, value in node.items()}
        if node.pop("nullable", False):
            return {"anyOf": [node, {"type": "null"}]}
        return node
    if isinstance(node, list):
        return [_as_json_schema(value) for value in node]
    return node


TGI_DOCUMENT = _as_openapi_30(json.loads(DOCUMENT.read_text()))
COMPONENTS = _as_json_schema(TGI_DOCUMENT["components"])


def payload_errors(name: str, payload: Any) -> list[str]:
    schema = {"$ref": f"#/components/schemas/{name}", "components": COMPONENTS}
    validator = jsonschema.Draft4Validator(schema)
    return [f"{name}: {error.message}" for error in validator.iter_errors(payload)]


def sse_payload_errors(path: str, response: httpx.Response | Any) -> list[str]:
    """Each event's JSON against the schema TGI documents for it."""
    errors: list[str] = []
    for line in response.text.splitlines():
        if not line.startswith("data:") or line.strip() == "data: [DONE]":
            continue
        payload = json.loads(line[5:])
        if "error" in payload:
            errors += payload_errors("ErrorResponse", payload)
        elif path == "/v1/completions" or (path == "/invocations" and "choices" in payload):
            # /invocations streams what the route its body is meant for streams.
            # OpenAI's protocol, which the OpenAI SDK reads, marks a chunk that does not finish
            # with a null finish_reason; TGI's document types it as a string.
            choices = [{**c, "finish_reason": c["finish_reason"] or ""} for c in payload["choices"]]
            errors += payload_errors("Chunk", {**payload, "choices": choices})
        else:
            errors += payload_errors("StreamResponse", payload)
    return errors


def tgi_reason(failure: Any, path: str, response: Any, body: Any) -> str | None:
    """Why TGI itself fails this check the same way; None for a failure of ours. ``body`` is
    the request's JSON body."""
    title, message, status = failure.title, failure.message, response.status_code
    parameters = body.get("parameters") if isinstance(body, dict) else None
    if (
        title == "Schema-violating request accepted"
        and "frequency_penalty" in message
        and isinstance(parameters, dict)
        and parameters.get("frequency_penalty") == -2
    ):
        return "TGI accepts -2.0 (its check is >= -2.0); the document makes -2 exclusive"
    if title == "SSE event violates schema":
        return "the event envelope is checked, not its payload (checked by sse_payload_errors)"
    if path == "/v1/models" and title == "Response violates schema":
        return "TGI answers a list of ModelInfo (as OpenAI does) where it documents one"
    if title == "Schema-valid request rejected" and status == 422:
        # The error is JSON, or one event of a stream: its text holds the message either way.
        return next((rule for rule in TGI_RULES if rule in response.text), None)
    if title == "Schema-violating request accepted" and path == "/tokenize":
        return "TGI's /tokenize reads only `inputs`: it does not check the parameters either"
    if title == "Undocumented status code" and path == "/tokenize" and status == 422:
        return "TGI's JSON extractor answers a body that is no GenerateRequest with 422 too"
    if title == "Undocumented status code" and status == 404 and "does not exist" in response.text:
        return "a model this server does not serve is a 404, which the OpenAI adapter relies on"
    if title == "Schema-violating request accepted" and path in ("/v1/completions", "/invocations"):
        return (
            "OpenAI's API takes `stop` and `prompt` as a string too"
            if ("stop" in message or "prompt" in message)
            else None
        )
    if path == "/invocations" and "more than one of the schemas" in message:
        return "an empty completion fits both ChatCompletion and CompletionFinal in the oneOf"
    return None


@pytest.fixture
def tgi_schema(sim_executor: str) -> Any:
    config = SchemathesisConfig.from_dict(
        {"phases": {"examples": {"enabled": False}}, "base-url": sim_executor}
    )
    return schemathesis.openapi.from_dict(copy.deepcopy(TGI_DOCUMENT), config=config)


schema = schemathesis.pytest.from_fixture("tgi_schema")


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_server_speaks_tgi_as_documented(case: Any, sim_executor: str) -> None:
    path = case.operation.path
    response = case.call(base_url=sim_executor, timeout=30)
    try:
        case.validate_response(response)
    except (AssertionError, BaseExceptionGroup) as raised:  # a Failure, or a FailureGroup
        failures = list(getattr(raised, "exceptions", [raised]))
        unexplained = [f for f in failures if tgi_reason(f, path, response, case.body) is None]
        found = "\n\n".join(f"{f.title}: {f.message}" for f in unexplained)
        sent = json.dumps(case.body, default=str)[:1000]
        assert not unexplained, f"{found}\n\nsent {sent}\ngot {response.text[:1000]}"
    content_type = response.headers.get("content-type", [""])[0]
    if content_type.startswith("text/event-stream"):
        assert not sse_payload_errors(path, response), response.text[:2000]
    if path == "/v1/models" and response.status_code == 200:
        for card in response.json()["data"]:
            assert not payload_errors("ModelInfo", card)
