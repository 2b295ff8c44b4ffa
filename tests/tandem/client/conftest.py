"""The client's tests run against the real API (a uvicorn server on the test Postgres and
Redis) with the front-door tests' stand-in pipeline finishing the jobs."""

from tests.services.api.chat.conftest import completer
from tests.services.api.conftest import api_redis_url, api_settings, make_tenant, server

__all__ = ["api_redis_url", "api_settings", "completer", "make_tenant", "server"]
