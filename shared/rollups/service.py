"""Roll-ups of the jobs no settlement added (run by the accounting sweep)."""

from __future__ import annotations

from datetime import datetime

from shared.db.session import unit_of_work
from shared.rollups import repository as repo


def roll_up_ended_jobs(before: datetime, limit: int = 500) -> int:
    """Add to the roll-ups the jobs that ended before ``before`` without a settlement adding
    them, so the reports' raw part stays the live jobs; how many were added.

    One short transaction per job, like a settlement's: the all-tenants rows are shared by
    every settlement, and a long transaction holding many of them would stall those."""
    with unit_of_work() as session:
        found = repo.ended_not_rolled_up(session, before, limit)
    added = 0
    for job_id in found:
        with unit_of_work() as session:
            added += repo.add_job(session, job_id)
    return added
