"""A stand-in pipeline for the front-door tests: a thread that takes each queued job of the
registered tenants to ``executing``, writes the executor's ``answer`` event (as
``services.executor`` does), then completes it through the public functions the pipeline uses
(model calls, outcome, ``shared.budgets.settle``). A tenant's gate, when given, holds its jobs
between the answer and the end, so a test can see the answer streamed before the job is over.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import select

from shared.db.models import Job, JobStatus
from shared.db.session import unit_of_work
from shared.jobs.states import add_event, transition
from tests.services.api.conftest import finish_job


@dataclass
class Outcome:
    status: JobStatus = JobStatus.SUCCEEDED
    gate: threading.Event | None = None
    finish_reason: str = "eos_token"
    answered: list[uuid.UUID] = field(default_factory=list)


def answer_for(question: str) -> str:
    return f"answer to: {question}"


def _answer(job_id: uuid.UUID, outcome: Outcome) -> None:
    with unit_of_work() as session:
        job = session.get(Job, job_id, with_for_update=True)
        assert job is not None
        transition(session, job, JobStatus.EXECUTING)
        if outcome.status is JobStatus.SUCCEEDED:
            add_event(
                session,
                job,
                "answer",
                answer=answer_for(job.question),
                generated_tokens=25,
                finish_reason=outcome.finish_reason,
            )


@pytest.fixture
def completer() -> Iterator[dict[str, Outcome]]:
    """Finishes every queued job of the tenants (by id) registered in the returned dict."""
    outcomes: dict[str, Outcome] = {}
    taken: set[uuid.UUID] = set()
    stop = threading.Event()

    def complete(job_id: uuid.UUID, question: str, outcome: Outcome) -> None:
        _answer(job_id, outcome)
        outcome.answered.append(job_id)
        if outcome.gate is not None:
            outcome.gate.wait(30)
        finish_job(job_id, answer=answer_for(question), status=outcome.status)

    def run() -> None:
        while not stop.wait(0.05):
            with unit_of_work() as session:
                queued = session.execute(
                    select(Job.id, Job.tenant_id, Job.question).where(
                        Job.status == JobStatus.QUEUED.value
                    )
                ).all()
            for job_id, tenant_id, question in queued:
                outcome = outcomes.get(str(tenant_id))
                if outcome is not None and job_id not in taken:
                    taken.add(job_id)
                    threading.Thread(
                        target=complete, args=(job_id, question, outcome), daemon=True
                    ).start()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield outcomes
    stop.set()
    thread.join(timeout=5)
