"""The roll-up write: one statement per settled job, every roll-up (hourly and daily, the
tenant's row and the all-tenants row), and nothing twice."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import DateTime, event, literal, select
from sqlalchemy.orm import Session

from shared.db.models import (
    Job,
    LatencyDaily,
    LatencyHourly,
    ModelCall,
    OutcomeDaily,
    OutcomeHourly,
    ScoreDaily,
    ScoreHourly,
    UsageDaily,
    UsageHourly,
    UsageTotalDaily,
    UsageTotalHourly,
)
from shared.rollups import repository as rollups
from shared.rollups.buckets import LATENCY_ERROR, latency_bucket, latency_ms, percentiles
from shared.tenants import create_tenant

CREATED = datetime(2023, 5, 4, 23, 50, tzinfo=UTC)
TABLES = (
    UsageHourly,
    UsageDaily,
    UsageTotalHourly,
    UsageTotalDaily,
    OutcomeHourly,
    OutcomeDaily,
    LatencyHourly,
    LatencyDaily,
    ScoreHourly,
    ScoreDaily,
)


def settled_job(session: Session, calls: int) -> Job:
    tenant = create_tenant(session, f"rollup-{uuid.uuid4().hex[:10]}")
    job = Job(
        id=uuid.uuid4(),
        tenant_id=tenant.id,
        status="succeeded",
        domain="code",
        policy="tandem",
        question="q",
        levels=[0, 100],
        max_answer_tokens=64,
        prompt_version="test",
        cost=Decimal("0.003"),
        created_at=CREATED,
        finished_at=CREATED + timedelta(seconds=2),
        truncation_level=1,
        termination_reason="sufficient",
        scores=[{"level": 0, "score": 0.25}, {"level": 1, "score": 0.95}, {"level": 2}],
    )
    session.add(job)
    for n in range(calls):  # across midnight: two hours, two days
        session.add(
            ModelCall(
                job_id=job.id,
                step=f"s{n}",
                role="coordinator" if n % 2 else "executor",
                model="m",
                engine="test",
                prompt_tokens=10,
                generated_tokens=n,
                flops_prompt=Decimal(100),
                flops_generated=Decimal(n),
                cost=Decimal("0.001"),
                created_at=CREATED + timedelta(minutes=5 * n),
            )
        )
    session.flush()
    return job


@pytest.fixture
def statements(db_session: Session) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(args[2])

    connection = db_session.connection()
    event.listen(connection, "before_cursor_execute", count)
    yield seen
    event.remove(connection, "before_cursor_execute", count)


def rows(session: Session, tenant_id: uuid.UUID | None) -> dict[str, list[dict[str, Any]]]:
    """Each roll-up's rows of one tenant (None: the all-tenants rows) in the days around
    CREATED, without ids."""
    found = {}
    for table in TABLES:
        columns = table.__table__.c
        period = columns.hour if "hour" in columns else columns.day
        stmt = select(*(c for c in columns if c.name not in ("id", "tenant_id"))).where(
            columns.tenant_id.is_(None) if tenant_id is None else columns.tenant_id == tenant_id,
            period >= CREATED - timedelta(days=1),
            period < CREATED + timedelta(days=2),
        )
        found[table.__tablename__] = sorted(
            (dict(r) for r in session.execute(stmt).mappings()), key=str
        )
    return found


def test_a_settled_job_is_added_to_every_rollup_in_one_statement(
    db_session: Session, statements: list[str]
) -> None:
    job = settled_job(db_session, calls=4)  # 23:50, 23:55, 00:00, 00:05
    statements.clear()
    assert rollups.add_settled_job(db_session, job)
    assert len(statements) == 1
    # In the server's own placeholders: psycopg would re-parse a statement this long per call.
    assert "$1" in statements[0] and "%(" not in statements[0]
    mine = rows(db_session, job.tenant_id)
    assert {(r["hour"].hour, r["role"], r["calls"]) for r in mine["usage_hourly"]} == {
        (23, "executor", 1),
        (23, "coordinator", 1),
        (0, "executor", 1),
        (0, "coordinator", 1),
    }
    assert len(mine["usage_daily"]) == 4  # two days, two roles
    assert sum(r["cost"] for r in mine["usage_daily"]) == Decimal("0.004")
    assert sum(r["flops"] for r in mine["usage_hourly"]) == 4 * 100 + 0 + 1 + 2 + 3
    assert [(r["day"].day, r["calls"], r["cost"]) for r in mine["usage_total_daily"]] == [
        (4, 2, Decimal("0.002")),
        (5, 2, Decimal("0.002")),
    ]
    assert len(mine["usage_total_hourly"]) == 2
    (outcome,) = mine["outcome_hourly"]
    assert (outcome["status"], outcome["truncation_level"], outcome["termination_reason"]) == (
        "succeeded",
        1,
        "sufficient",
    )
    assert (outcome["jobs"], outcome["cost"]) == (1, Decimal("0.003"))
    assert [r["day"] for r in mine["outcome_daily"]] == [datetime(2023, 5, 4, tzinfo=UTC)]
    # Two checkpoint scores (the entry without a score is not one): tenths 2 and 9.
    assert [(r["bucket"], r["checkpoints"]) for r in mine["score_daily"]] == [(2, 1), (9, 1)]
    (latency,) = mine["latency_hourly"]
    assert latency_ms(latency["bucket"]) == pytest.approx(2000, rel=LATENCY_ERROR)
    # No other test writes to those days: the all-tenants rows are this tenant's exactly.
    assert rows(db_session, None) == mine
    assert db_session.scalar(select(Job.rolled_up).where(Job.id == job.id)) is True


def test_a_second_settlement_adds_nothing(db_session: Session, statements: list[str]) -> None:
    job = settled_job(db_session, calls=2)
    assert rollups.add_settled_job(db_session, job)
    once = rows(db_session, job.tenant_id)
    statements.clear()
    assert not rollups.add_settled_job(db_session, job)
    assert len(statements) == 1
    assert rows(db_session, job.tenant_id) == once


def test_a_job_without_calls_or_scores_counts_as_a_job(db_session: Session) -> None:
    job = settled_job(db_session, calls=0)
    job.scores, job.status, job.finished_at = [], "cancelled", None
    assert rollups.add_settled_job(db_session, job)
    mine = rows(db_session, job.tenant_id)
    assert [r["status"] for r in mine["outcome_daily"]] == ["cancelled"]
    assert mine["usage_hourly"] == mine["latency_daily"] == mine["score_daily"] == []


@pytest.mark.parametrize("ms", [0.0, 0.4, 1.0, 1.5, 17.0, 1000.0, 1024.0, 65_536.5, 3.6e6])
def test_a_latency_reads_back_within_the_histograms_resolution(
    db_session: Session, ms: float
) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    moment = DateTime(timezone=True)
    finished = literal(start + timedelta(milliseconds=ms), moment)
    bucket = db_session.scalar(select(latency_bucket(finished, literal(start, moment))))
    assert bucket is not None
    assert latency_ms(bucket) == pytest.approx(ms, rel=LATENCY_ERROR, abs=0.5)


def test_percentiles_interpolate_like_percentile_cont() -> None:
    # One job in each of two buckets: p50 halfway between their read-back values.
    low, high = latency_ms(100), latency_ms(120)
    assert percentiles({100: 1, 120: 1}, [0.0, 0.5, 1.0]) == pytest.approx(
        (low, (low + high) / 2, high)
    )
    assert percentiles({}, [0.5]) == (None,)
    assert percentiles({7: 3}, [0.99]) == (latency_ms(7),)
