"""The price routes over real HTTP: listing with history, adding a price from a time, the
environment's seed, and every refusal a 422 (or 409) with the field and nothing written."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared.engines.config import engine_config
from shared.settings import DEV_ADMIN_KEY


def new_model() -> str:
    """Models of the test's own: the configured ones' prices are what other tests reserve at."""
    return f"priced-{uuid.uuid4().hex[:10]}"


def rows(admin: httpx.Client, model: str) -> list[dict[str, Any]]:
    response = admin.get("/v1/admin/prices", params={"model": model})
    assert response.status_code == 200, response.text
    return list(response.json())


def test_the_configured_models_are_seeded_from_the_environment(admin: httpx.Client) -> None:
    for role in ("coordinator", "executor"):
        profile = engine_config(role).profile
        seeded = [r for r in rows(admin, profile.name) if r["source"] == "environment"]
        assert len(seeded) == 1, seeded  # once, however often the API re-read its prices
        assert seeded[0]["prompt_per_mtok"] == str(profile.price_input_per_mtok.normalize())
        assert seeded[0]["generated_per_mtok"] == str(profile.price_output_per_mtok.normalize())


def test_a_new_price_takes_over_and_the_old_one_stays_listed(admin: httpx.Client) -> None:
    model = new_model()
    start = datetime.now(UTC) - timedelta(days=30)
    first = admin.post(
        "/v1/admin/prices",
        json={
            "model": model,
            "prompt_per_mtok": "0.4",
            "generated_per_mtok": "1.2",
            "effective_from": start.isoformat(),
            "new_model": True,
        },
    )
    assert first.status_code == 201, first.text
    assert first.json()["in_force"] is True
    assert first.json()["cached_prompt_per_mtok"] == "0.4"  # default: the prompt price
    second = admin.post(
        "/v1/admin/prices",
        json={
            "model": model,
            "prompt_per_mtok": "0.5",
            "generated_per_mtok": "1.5",
            "cached_prompt_per_mtok": "0.125",
        },
    )
    assert second.status_code == 201, second.text
    assert second.json()["source"] == "admin"
    listed = rows(admin, model)
    assert [r["id"] for r in listed] == [second.json()["id"], first.json()["id"]]
    assert [r["in_force"] for r in listed] == [True, False]
    assert listed[1]["prompt_per_mtok"] == "0.4"  # history is never rewritten
    assert listed[0]["cached_prompt_per_mtok"] == "0.125"
    everything = admin.get("/v1/admin/prices").json()
    assert {r["id"] for r in listed} <= {r["id"] for r in everything}


BASE = {"prompt_per_mtok": "1", "generated_per_mtok": "2", "new_model": True}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"prompt_per_mtok": "-0.1"}, "prompt_per_mtok"),
        ({"generated_per_mtok": "lots"}, "generated_per_mtok"),
        ({"generated_per_mtok": "1e9"}, "generated_per_mtok"),
        ({"cached_prompt_per_mtok": "1.5"}, "cached_prompt_per_mtok"),
        ({"effective_from": "2026-01-01T00:00:00"}, "effective_from"),
        ({"new_model": False}, "model"),
        ({"model": ""}, "model"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_prices_are_422s_with_the_field_and_nothing_written(
    admin: httpx.Client, change: dict[str, Any], field: str
) -> None:
    model = new_model()
    response = admin.post("/v1/admin/prices", json={"model": model, **BASE, **change})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert rows(admin, model) == []


def test_a_second_price_from_the_same_moment_is_a_409(admin: httpx.Client) -> None:
    model = new_model()
    body = {"model": model, **BASE, "effective_from": "2026-06-01T00:00:00+00:00"}
    assert admin.post("/v1/admin/prices", json=body).status_code == 201
    again = admin.post("/v1/admin/prices", json={**body, "prompt_per_mtok": "3"})
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "price_exists"
    assert [r["prompt_per_mtok"] for r in rows(admin, model)] == ["1"]


def test_prices_need_the_admin_key(server: Any) -> None:
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.get("/v1/admin/prices").status_code == 401
        model = new_model()
        body = {"model": model, **BASE}
        assert anonymous.post("/v1/admin/prices", json=body).status_code == 401
    with httpx.Client(base_url=server.url, headers={"X-Admin-Key": DEV_ADMIN_KEY}) as admin:
        assert rows(admin, model) == []
