"""All SQL of the job record, in one package: the job row as the pipeline reads, locks and
writes it (:mod:`.rows`), its events (:mod:`.history`), a step's record (:mod:`.record`), what
the routes, the audit and the sweeper read (:mod:`.reads`), and admission (:mod:`.admission`).
Outside it, only the roll-ups' statement writes a job (it marks the job rolled up as it adds
it), a settlement writes its budget-alert events in the alerts' statement, and the reports and
the ledger check aggregate over jobs in their own queries.
"""

from __future__ import annotations

from shared.jobs.repository.admission import (
    Admitted,
    AtLimit,
    Candidate,
    Together,
    admit,
    admit_together,
)
from shared.jobs.repository.history import (
    EXPIRED,
    REANNOUNCED,
    RETRY,
    add_event,
    add_retry_event,
    last_retry,
    reannounced_since_progress,
    write_events,
)
from shared.jobs.repository.reads import (
    call_totals,
    calls,
    events,
    events_after,
    job_by_idempotency_key,
    job_for_tenant,
    job_status,
    last_finish_reason,
    page_of_jobs,
    shadow_run,
    stale_jobs,
    unsettled_finished_jobs,
    usage_by_model,
)
from shared.jobs.repository.record import (
    Recorded,
    insert_call,
    record_step,
)
from shared.jobs.repository.rows import (
    PROMPT_COLUMNS,
    SETTLEMENT_COLUMNS,
    STATE_COLUMNS,
    Prompt,
    job_snapshot,
    loaded_job,
    lock_job,
    lock_settling,
    lock_state,
    outside_transaction,
    prompt_of,
    save_state,
    state_of,
)

__all__ = [
    "EXPIRED",
    "PROMPT_COLUMNS",
    "REANNOUNCED",
    "RETRY",
    "SETTLEMENT_COLUMNS",
    "STATE_COLUMNS",
    "Admitted",
    "AtLimit",
    "Candidate",
    "Prompt",
    "Recorded",
    "Together",
    "add_event",
    "add_retry_event",
    "admit",
    "admit_together",
    "call_totals",
    "calls",
    "events",
    "events_after",
    "insert_call",
    "job_by_idempotency_key",
    "job_for_tenant",
    "job_snapshot",
    "job_status",
    "last_finish_reason",
    "last_retry",
    "loaded_job",
    "lock_job",
    "lock_settling",
    "lock_state",
    "outside_transaction",
    "page_of_jobs",
    "prompt_of",
    "reannounced_since_progress",
    "record_step",
    "save_state",
    "shadow_run",
    "stale_jobs",
    "state_of",
    "unsettled_finished_jobs",
    "usage_by_model",
    "write_events",
]
