from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.settings import CommonSettings, WorkerSettings


def test_env_prefix_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_DB_POOL_SIZE", "3")
    assert CommonSettings().db_pool_size == 3


def test_production_refuses_the_development_admin_key() -> None:
    with pytest.raises(ValidationError, match="ADMIN_API_KEY"):
        CommonSettings(environment="production")
    assert CommonSettings(environment="production", admin_api_key="k" * 32).admin_api_key


def test_time_limits_must_stay_under_the_visibility_timeout() -> None:
    with pytest.raises(ValidationError, match="visibility_timeout_s"):
        WorkerSettings(task_time_limit_s=4000, visibility_timeout_s=3600)
    with pytest.raises(ValidationError):
        WorkerSettings(task_soft_time_limit_s=900, task_time_limit_s=900)
