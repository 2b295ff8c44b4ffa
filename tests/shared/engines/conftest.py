from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.services.engine.server_fixtures import engine_server


@pytest.fixture(scope="session")
def sim_url() -> Iterator[str]:
    """The simulator as the executor, at full speed, over real HTTP."""
    with engine_server("sim", "sim-executor", env={"TANDEM_ENGINE_SIM_TOKENS_PER_S": "0"}) as url:
        yield url
