"""The one beat runs every service's periodic tasks, each on its own queue."""

from __future__ import annotations

from shared.tasks import Queue, TaskName
from tandem.commands.workers import beat_schedule


def test_beat_runs_the_sweeper_and_the_webhook_relay() -> None:
    tasks = {entry["task"]: entry for entry in beat_schedule().values()}
    assert {TaskName.ACCOUNTING_SWEEP.value, TaskName.WEBHOOKS_RELAY.value} <= set(tasks)
    relay = tasks[TaskName.WEBHOOKS_RELAY.value]
    assert relay["options"]["queue"] == Queue.WEBHOOKS.value
    assert relay["options"]["expires"] <= relay["schedule"]
