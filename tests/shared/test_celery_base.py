from __future__ import annotations

from shared.celery_base import TandemTask, celery_config, make_celery
from shared.errors import TransientError
from shared.settings import WorkerSettings
from shared.tasks import HEALTH_TASKS, Queue, TaskName


def test_reliability_settings() -> None:
    settings = WorkerSettings(
        visibility_timeout_s=1000,
        task_soft_time_limit_s=100,
        task_time_limit_s=200,
        task_expires_s=2000,
    )
    config = celery_config(settings, Queue.SCORER)
    assert config["task_acks_late"] is True
    assert config["task_reject_on_worker_lost"] is True
    assert config["worker_prefetch_multiplier"] == 1
    assert config["task_soft_time_limit"] < config["task_time_limit"]
    assert config["task_time_limit"] < config["broker_transport_options"]["visibility_timeout"]
    assert config["task_default_queue"] == "scorer"


def test_every_task_name_routes_to_its_queue() -> None:
    app = make_celery("t", settings=WorkerSettings())
    router = app.amqp.router
    for name in TaskName:
        route = router.route({}, name.value)
        assert route["queue"].name == name.queue.value
    assert set(HEALTH_TASKS) == set(Queue)


def test_retries_are_bounded_and_only_for_transient_errors() -> None:
    task = TandemTask()
    assert 0 < task.max_retries <= 10
    assert TransientError in task.autoretry_for
    assert task.retry_jitter and task.retry_backoff


def test_only_health_probes_store_a_result_and_no_task_events_are_sent() -> None:
    config = celery_config(WorkerSettings(), Queue.EXECUTOR)
    assert config["task_ignore_result"] is True
    assert not config["task_track_started"]
    assert not config["task_send_sent_event"] and not config["worker_send_task_events"]
    annotated = {
        name for name, options in config["task_annotations"].items() if not options["ignore_result"]
    }
    assert annotated == {task.value for task in HEALTH_TASKS.values()}
    assert {name for name in TaskName if name.replies} == set(HEALTH_TASKS.values())
