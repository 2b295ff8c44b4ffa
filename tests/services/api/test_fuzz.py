"""Property-based fuzz of the live API from its own OpenAPI schema: never a 5xx.

Excluded: ``/readyz`` (a 503 there is its answer when no worker consumes a queue, as in this
test) and the chat front door (it waits for a pipeline that does not run here; it is covered by
``test_openai_front_door``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from shared.settings import DEV_ADMIN_KEY
from tests.services.api.conftest import ServerThread, TenantHandle


@pytest.fixture
def fuzz_target(server: ServerThread, make_tenant: Callable[..., TenantHandle]) -> Any:
    return server, make_tenant(budget_cap="1000")


@pytest.fixture
def api_schema(server: ServerThread) -> Any:
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema").exclude(
    path_regex=r"^/(readyz|v1/chat/completions)$"
)


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_produces_a_server_error(case: Any, fuzz_target: Any) -> None:
    server, tenant = fuzz_target
    path = case.operation.path
    auth = (
        {"X-Admin-Key": DEV_ADMIN_KEY}
        if path.startswith("/v1/admin")
        else {"Authorization": f"Bearer {tenant.key}"}
    )
    response = case.call(base_url=server.url, headers=auth, timeout=30)
    case.validate_response(response, checks=[not_a_server_error])
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        error = response.json()["error"]
        assert isinstance(error["code"], str) and isinstance(error["message"], str)
