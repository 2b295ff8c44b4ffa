"""Queue and task names: the contract between producers and workers.

Producers send by name (``celery_app.send_task``), so no process imports another service's
code, and the API never imports onnxruntime or a model client.
"""

from __future__ import annotations

from enum import StrEnum


class Queue(StrEnum):
    COORDINATOR = "coordinator"
    SCORER = "scorer"
    EXECUTOR = "executor"
    ACCOUNTING = "accounting"
    WEBHOOKS = "webhooks"


class TaskName(StrEnum):
    """Fully qualified task names; the prefix before the first dot is the queue."""

    COORDINATOR_HEALTH = "coordinator.health"
    COORDINATOR_EXTEND = "coordinator.extend_insights"
    SCORER_HEALTH = "scorer.health"
    SCORER_SCORE = "scorer.score_level"
    EXECUTOR_HEALTH = "executor.health"
    EXECUTOR_EXECUTE = "executor.execute"
    ACCOUNTING_HEALTH = "accounting.health"
    ACCOUNTING_SETTLE = "accounting.settle_job"
    ACCOUNTING_SWEEP = "accounting.sweep"
    WEBHOOKS_HEALTH = "webhooks.health"
    WEBHOOKS_DELIVER = "webhooks.deliver"
    WEBHOOKS_RELAY = "webhooks.relay"

    @property
    def queue(self) -> Queue:
        return Queue(self.value.split(".", 1)[0])

    @property
    def replies(self) -> bool:
        """Whether the sender waits for the task's result: only the health probes do; the
        pipeline's tasks report through Postgres."""
        return self.value.endswith(".health")


HEALTH_TASKS: dict[Queue, TaskName] = {
    Queue.COORDINATOR: TaskName.COORDINATOR_HEALTH,
    Queue.SCORER: TaskName.SCORER_HEALTH,
    Queue.EXECUTOR: TaskName.EXECUTOR_HEALTH,
    Queue.ACCOUNTING: TaskName.ACCOUNTING_HEALTH,
    Queue.WEBHOOKS: TaskName.WEBHOOKS_HEALTH,
}
