from __future__ import annotations

from decimal import Decimal

import pytest

from shared.db.models import Role
from shared.engines import engine_config, make_client
from shared.engines.openai_compat import OpenAICompatClient
from shared.engines.tgi import TGIClient
from shared.errors import ConfigurationError


def test_each_role_reads_its_own_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_COORDINATOR_ENGINE_URL", "http://llm:8080/")
    monkeypatch.setenv("TANDEM_COORDINATOR_ENGINE_MODEL_ID", "Qwen/Qwen2.5-32B-Instruct")
    monkeypatch.setenv("TANDEM_COORDINATOR_ENGINE_MODEL_PARAMETERS", "32000000000")
    monkeypatch.setenv("TANDEM_COORDINATOR_ENGINE_PRICE_OUTPUT_PER_MTOK", "2.40")
    monkeypatch.setenv("TANDEM_COORDINATOR_ENGINE_TIMEOUT_S", "900")
    monkeypatch.setenv("TANDEM_COORDINATOR_ENGINE_MAX_ATTEMPTS", "6")
    monkeypatch.setenv("TANDEM_EXECUTOR_ENGINE_KIND", "openai")
    monkeypatch.setenv("TANDEM_EXECUTOR_ENGINE_URL", "http://vllm:8000")
    monkeypatch.setenv("TANDEM_EXECUTOR_ENGINE_API_KEY", "sk-test")

    coordinator = engine_config(Role.COORDINATOR)
    assert coordinator.url == "http://llm:8080"
    assert coordinator.profile.name == "Qwen/Qwen2.5-32B-Instruct"
    assert coordinator.profile.parameters == 32_000_000_000
    assert coordinator.profile.price_output_per_mtok == Decimal("2.40")
    assert coordinator.timeout_s == 900 and coordinator.retry.attempts == 6
    assert isinstance(make_client(coordinator), TGIClient)

    executor = engine_config("executor")
    assert executor.kind == "openai" and executor.api_key == "sk-test"
    assert isinstance(make_client(executor), OpenAICompatClient)


def test_scorer_uses_the_executor_engine_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_EXECUTOR_ENGINE_URL", "http://slm:8080")
    scorer = engine_config(Role.SCORER)
    assert scorer.url == "http://slm:8080" and scorer.role is Role.SCORER
    assert scorer.profile == engine_config(Role.EXECUTOR).profile

    monkeypatch.setenv("TANDEM_SCORER_ENGINE_URL", "http://scorer:8080")
    monkeypatch.setenv("TANDEM_SCORER_ENGINE_MODEL_ID", "slm")
    assert engine_config(Role.SCORER).url == "http://scorer:8080"


def test_missing_url_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_COORDINATOR_ENGINE_URL", "")
    with pytest.raises(ConfigurationError, match="TANDEM_COORDINATOR_ENGINE_URL"):
        engine_config(Role.COORDINATOR)


def test_defaults_point_at_the_local_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COORDINATOR_ENGINE_URL", "EXECUTOR_ENGINE_MODEL_ID"):
        monkeypatch.delenv(f"TANDEM_{name}", raising=False)
    assert engine_config(Role.COORDINATOR).url == "http://127.0.0.1:8081"
    assert engine_config(Role.EXECUTOR).profile.name == "smollm2-135m"


def test_the_configuration_is_kept_until_a_variable_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TANDEM_EXECUTOR_ENGINE_URL", "http://a:1")
    first = engine_config(Role.EXECUTOR)
    assert engine_config(Role.EXECUTOR) is first  # not rebuilt from the environment per call
    monkeypatch.setenv("TANDEM_EXECUTOR_ENGINE_URL", "http://b:2")
    assert engine_config(Role.EXECUTOR).url == "http://b:2"
    monkeypatch.delenv("TANDEM_EXECUTOR_ENGINE_URL")  # removed: the default again
    assert engine_config(Role.EXECUTOR).url == "http://127.0.0.1:8082"
