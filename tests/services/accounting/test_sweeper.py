"""The sweeper tells queued, retrying and lost jobs apart, and loses none to an outage."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import update

from services.accounting import service as accounting
from services.accounting.settings import AccountingSettings
from services.scorer import service as scorer
from shared.db.models import Job, JobEvent
from shared.db.session import unit_of_work
from shared.jobs.flow import NextTask
from shared.jobs.service import record_expired, record_retry
from shared.tasks import TaskName
from tests.services.pipeline.support import history, job_row, make_tenant, submit, use_classifier

HORIZON = 3600
TASK = TaskName.SCORER_SCORE.value
QUESTION = "What is 3 * 14?"
REANNOUNCE_LIMIT = accounting.REANNOUNCE_LIMIT


def age(job_id: uuid.UUID, seconds: float = 2 * HORIZON) -> None:
    """Make the job and its events look ``seconds`` old."""
    then = datetime.now(UTC) - timedelta(seconds=seconds)
    with unit_of_work() as session:
        session.execute(update(Job).where(Job.id == job_id).values(updated_at=then))
        session.execute(update(JobEvent).where(JobEvent.job_id == job_id).values(created_at=then))


def sweep(backlog: int = 0) -> tuple[accounting.SweepResult, list[NextTask]]:
    return accounting.sweep(HORIZON, lambda _queue: backlog)


def swept(action: str) -> float:
    return REGISTRY.get_sample_value("tandem_swept_jobs_total", {"action": action}) or 0.0


def mine(job_id: uuid.UUID, following: list[NextTask]) -> list[NextTask]:
    return [t for t in following if t.kwargs.get("job_id") == str(job_id)]


@pytest.mark.usefixtures("sim_env")
def test_a_step_whose_successor_was_never_published_is_announced_again() -> None:
    use_classifier(1.01, 0.0)
    job_id = submit(None, make_tenant(), QUESTION, start=False)
    lost = scorer.score(job_id, 0)  # committed; its message never reaches the broker
    age(job_id)
    result, following = sweep()
    assert str(job_id) in result.reannounced and str(job_id) not in result.failed
    assert mine(job_id, following) == lost
    assert job_row(job_id).status == "coordinating"
    assert history(job_id)[-1] == ("reannounced", "coordinating", None)
    _, again = sweep()  # the announcement counts as progress for one horizon
    assert mine(job_id, again) == []


def test_a_job_behind_a_backlog_or_retrying_is_left_alone() -> None:
    queued = submit(None, make_tenant(), QUESTION, start=False)
    retrying = submit(None, make_tenant(), QUESTION, start=False)
    age(queued, 1.5 * HORIZON)  # past the horizon, within the backlog's one more
    age(retrying)
    record_retry(
        retrying, task="scorer.score_level", attempt=1, code="engine_unavailable", error="x"
    )
    result, following = sweep(backlog=3)
    assert {str(queued), str(retrying)} <= set(result.waiting)
    assert mine(queued, following) == mine(retrying, following) == []
    assert job_row(queued).status == job_row(retrying).status == "queued"


def test_a_lost_job_is_given_up_with_the_cause_of_its_last_retry() -> None:
    job_id = submit(None, make_tenant(), QUESTION, start=False)
    cause = "connection failed: RemoteProtocolError('peer closed connection')"
    record_retry(
        job_id, task="scorer.score_level", attempt=5, code="engine_unavailable", error=cause
    )
    for _ in range(REANNOUNCE_LIMIT):
        age(job_id)
        result, following = sweep()
        assert str(job_id) in result.reannounced
        assert mine(job_id, following) == [
            NextTask(TaskName.SCORER_SCORE, {"job_id": str(job_id), "level": 0})
        ]
    age(job_id)
    before = {action: swept(action) for action in ("failed", "reannounced", "resettled")}
    sweeps = REGISTRY.get_sample_value("tandem_sweeps_total") or 0.0
    result, following = sweep()
    assert REGISTRY.get_sample_value("tandem_sweeps_total") == sweeps + 1
    assert str(job_id) in result.failed
    assert mine(job_id, following) == [
        NextTask(TaskName.ACCOUNTING_SETTLE, {"job_id": str(job_id)})
    ]
    counted = [swept(action) - n for action, n in before.items()]
    assert counted == [len(result.failed), len(result.reannounced), len(result.resettled)]
    job = job_row(job_id)
    assert (job.status, job.error_code) == ("failed", "engine_unavailable")
    assert job.error_message is not None and cause in job.error_message


def test_a_job_behind_a_backlog_is_sent_again_but_never_given_up() -> None:
    """However long its queue stays busy; once the queue is empty and the job has still not
    moved, the announcements start to count."""
    job_id = submit(None, make_tenant(), QUESTION, start=False)
    for _ in range(REANNOUNCE_LIMIT + 2):
        age(job_id)  # past the backlog's one more horizon
        result, following = sweep(backlog=40)
        assert str(job_id) in result.reannounced and str(job_id) not in result.failed
        assert len(mine(job_id, following)) == 1
    assert history(job_id)[-1] == ("reannounced", "queued", None)
    for _ in range(REANNOUNCE_LIMIT):
        age(job_id)
        result, _ = sweep()
        assert str(job_id) in result.reannounced
    age(job_id)
    result, _ = sweep()
    assert str(job_id) in result.failed
    assert (job_row(job_id).status, job_row(job_id).error_code) == ("failed", "stuck")


@pytest.mark.usefixtures("sim_env")
def test_announcements_count_from_the_job_s_last_move() -> None:
    """A job lost once in each of its steps (a broker outage at each) is not given up."""
    use_classifier(1.01, 0.0)
    job_id = submit(None, make_tenant(), QUESTION, start=False)
    for _ in range(REANNOUNCE_LIMIT):
        age(job_id)
        result, _ = sweep()
        assert str(job_id) in result.reannounced
    scorer.score(job_id, 0)  # the job moves on: to the coordinator
    for _ in range(REANNOUNCE_LIMIT):
        age(job_id)
        result, _ = sweep()
        assert str(job_id) in result.reannounced and str(job_id) not in result.failed
    age(job_id)
    result, _ = sweep()
    assert str(job_id) in result.failed
    assert job_row(job_id).error_message == f"no progress for {HORIZON} s in coordinating"


def test_a_job_whose_message_expired_is_late_not_lost() -> None:
    """A worker dropped its message for its age behind a backlog, then the queue emptied (and
    the worker's own resend was lost too): its step is sent again, not counted towards giving
    it up."""
    job_id = submit(None, make_tenant(), QUESTION, start=False)
    for _ in range(REANNOUNCE_LIMIT):
        age(job_id)
        assert str(job_id) in sweep()[0].reannounced
    step = {"job_id": str(job_id), "level": 0}
    again = record_expired(job_id, task=TASK, kwargs=step, expires="2026-01-01T00:00:00+00:00")
    assert again is not None and dict(again.kwargs) == step
    age(job_id)
    result, following = sweep()
    assert str(job_id) in result.reannounced and str(job_id) not in result.failed
    assert len(mine(job_id, following)) == 1


def test_one_sweep_looks_at_every_stale_job_page_after_page(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Jobs left alone (retrying) do not hide the ones after them, however many pages they
    fill."""
    monkeypatch.setattr(accounting, "SWEEP_PAGE", 2)
    tenant = make_tenant()
    retrying = [submit(None, tenant, QUESTION, start=False) for _ in range(3)]
    lost = [submit(None, tenant, QUESTION, start=False) for _ in range(3)]
    for job_id in retrying:  # the least recently touched: the first pages
        age(job_id, 3 * HORIZON)
        record_retry(job_id, task=TASK, attempt=1, code="engine_unavailable", error="x")
    for job_id in lost:
        age(job_id, 2.5 * HORIZON)
    result, following = sweep()
    assert {str(j) for j in retrying} <= set(result.waiting)
    assert {str(j) for j in lost} <= set(result.reannounced)
    assert all(len(mine(j, following)) == 1 for j in lost)


def test_the_defaults_let_a_killed_worker_s_job_finish_within_minutes() -> None:
    s = AccountingSettings()
    assert s.task_soft_time_limit_s < s.task_time_limit_s < s.visibility_timeout_s <= 15 * 60
    retries = s.task_max_retries * s.task_retry_backoff_max_s
    assert s.task_expires_s > s.visibility_timeout_s + retries  # a redelivery is still due
    assert s.stuck_after_s > s.task_expires_s  # the sweeper never doubts a message still due
    with pytest.raises(ValueError, match="stuck_after_s"):
        AccountingSettings(stuck_after_s=s.task_expires_s)
    with pytest.raises(ValueError, match="task_expires_s"):
        AccountingSettings(task_expires_s=s.visibility_timeout_s)
