"""The job's life across services: the state machine, step records, and the first task.

The API calls :func:`start_job` after the commit that created the job; each pipeline service
uses :mod:`shared.jobs.service` to move the job on one idempotent step at a time.
"""

from shared.jobs.flow import NextTask, first_task, next_task, publish, start_job
from shared.jobs.states import TRANSITIONS, InvalidTransition, can_transition, transition

__all__ = [
    "TRANSITIONS",
    "InvalidTransition",
    "NextTask",
    "can_transition",
    "first_task",
    "next_task",
    "publish",
    "start_job",
    "transition",
]
