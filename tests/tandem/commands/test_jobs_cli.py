"""``tandem jobs submit|get|watch|cancel`` against the real API (through ``tandem.client``)."""

from __future__ import annotations

import json
from collections.abc import Callable

from typer.testing import CliRunner

from tandem.cli import app
from tests.services.api.chat.conftest import Outcome, answer_for, completer
from tests.services.api.conftest import (
    TenantHandle,
    api_redis_url,
    api_settings,
    make_tenant,
    server,
)

__all__ = ["api_redis_url", "api_settings", "completer", "make_tenant", "server"]

runner = CliRunner()
Make = Callable[..., TenantHandle]


def env_of(tenant: TenantHandle, key: str | None = None) -> dict[str, str]:
    return {"TANDEM_URL": str(tenant.client.base_url), "TANDEM_API_KEY": key or tenant.key}


def test_submit_get_watch(make_tenant: Make, completer: dict[str, Outcome]) -> None:
    tenant = make_tenant()
    completer[str(tenant.id)] = Outcome()
    env = env_of(tenant)
    waited = runner.invoke(
        app, ["jobs", "submit", "What is 2+2?", "--domain", "math", "--wait"], env=env
    )
    assert waited.exit_code == 0, waited.output
    assert answer_for("What is 2+2?") in waited.output
    assert "succeeded  cost 0.00011" in waited.output

    submitted = runner.invoke(
        app, ["jobs", "submit", "q", "--policy", "slm_only", "--max-cost", "0.5", "--json"], env=env
    )
    assert submitted.exit_code == 0, submitted.output
    accepted = json.loads(submitted.output)
    assert accepted["status"] == "queued" and "E" not in accepted["reserved"]

    watched = runner.invoke(app, ["jobs", "watch", accepted["id"]], env=env)
    assert watched.exit_code == 0, watched.output
    lines = watched.output.splitlines()
    assert " submitted" in lines[0] and lines[-2] == "done  succeeded"
    assert lines[-1] == f"answer: {answer_for('q')}"

    shown = runner.invoke(app, ["jobs", "get", accepted["id"], "--json"], env=env)
    assert shown.exit_code == 0, shown.output
    job = json.loads(shown.output)
    assert job["policy"] == "slm_only" and job["max_cost"] == "0.5"
    assert (
        "answer: answer to: q"
        in runner.invoke(app, ["jobs", "get", accepted["id"]], env=env).output
    )


def test_cancel_and_errors(make_tenant: Make) -> None:
    tenant = make_tenant()
    env = env_of(tenant)
    submitted = runner.invoke(app, ["jobs", "submit", "q"], env=env)
    assert submitted.exit_code == 0, submitted.output
    job_id = submitted.output.split()[0]
    cancelled = runner.invoke(app, ["jobs", "cancel", job_id], env=env)
    assert cancelled.exit_code == 0 and f"{job_id}  cancelled" in cancelled.output
    watched = runner.invoke(app, ["jobs", "watch", job_id], env=env)
    assert watched.exit_code == 1 and "done  cancelled" in watched.output

    poor = env_of(make_tenant(budget_cap="0.0000001"))
    refused = runner.invoke(app, ["jobs", "submit", "q"], env=poor)
    assert refused.exit_code == 1
    assert "error: budget_exceeded: " in refused.output and "cap 0.0000001," in refused.output
    missing = runner.invoke(app, ["jobs", "get", "not-a-uuid"], env=env)
    assert missing.exit_code == 1 and "error: invalid_request" in missing.output
    stranger = runner.invoke(app, ["jobs", "get", job_id], env=env_of(tenant, key="tdm_wrong"))
    assert stranger.exit_code == 1 and "error: unauthorized" in stranger.output
