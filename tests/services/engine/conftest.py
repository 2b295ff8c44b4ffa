from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.services.engine.server_fixtures import engine_server

FAST = {"TANDEM_ENGINE_SIM_TOKENS_PER_S": "0"}


@pytest.fixture(scope="session")
def sim_executor() -> Iterator[str]:
    with engine_server("sim", "sim-executor", env=FAST) as url:
        yield url


@pytest.fixture(scope="session")
def sim_coordinator() -> Iterator[str]:
    with engine_server("sim", "sim-coordinator", env=FAST) as url:
        yield url


@pytest.fixture(scope="session")
def smollm() -> Iterator[str]:
    """SmolLM2-135M-Instruct (ChatML) on the gguf backend, limited to 2 threads."""
    with engine_server(
        "gguf", "smollm2-135m", env={"TANDEM_ENGINE_THREADS": "2"}, start_timeout_s=600
    ) as url:
        yield url


@pytest.fixture(scope="session")
def gemma() -> Iterator[str]:
    """Gemma 3 270M (base model: plain prompts) on the gguf backend."""
    with engine_server(
        "gguf", "gemma3-270m", env={"TANDEM_ENGINE_THREADS": "2"}, start_timeout_s=600
    ) as url:
        yield url


@pytest.fixture(
    params=[
        "sim",
        pytest.param("smollm2-135m", marks=pytest.mark.real_model),
        pytest.param("gemma3-270m", marks=pytest.mark.real_model),
    ]
)
def any_backend(request: pytest.FixtureRequest) -> str:
    """Each backend in turn: the simulator, then the real models (marked ``real_model``)."""
    name = {"sim": "sim_executor", "smollm2-135m": "smollm", "gemma3-270m": "gemma"}
    return str(request.getfixturevalue(name[request.param]))
