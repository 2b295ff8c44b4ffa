"""Start-up objects are frozen out of the collector's scans where a worker starts."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from celery import signals

from shared.celery_base import make_celery
from shared.heap import freeze_startup_heap
from shared.settings import WorkerSettings
from shared.tasks import Queue


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # a frozen test process would never collect its later cyclic garbage


@dataclass(eq=False)
class Sender:
    """What Celery sends these signals from: a worker controller or consumer of ``app``."""

    app: Any
    pool_cls: str = "prefork"


def scanned() -> set[int]:
    return {id(o) for generation in range(3) for o in gc.get_objects(generation)}


def test_frozen_objects_are_in_no_generation_a_collection_scans(unfrozen: None) -> None:
    kept = [[index] for index in range(1000)]
    assert id(kept[0]) in scanned()
    assert freeze_startup_heap() >= len(kept)
    assert not {id(item) for item in kept} & scanned()
    after = [0]  # allocated later: collected as before
    assert id(after) in scanned()


def test_a_worker_freezes_before_its_pool_forks_and_once_its_consumer_is_ready(
    unfrozen: None,
) -> None:
    app = make_celery("heap-test", queue=Queue.COORDINATOR, settings=WorkerSettings())
    signals.worker_ready.send(sender=Sender(object()))
    assert gc.get_freeze_count() == 0  # another app's worker in the same process: not ours

    signals.worker_ready.send(sender=Sender(app))
    assert gc.get_freeze_count() > 0
    gc.unfreeze()
    # prefork: the pool's children configure tracing themselves, nothing else runs here.
    signals.worker_init.send(sender=Sender(app))
    assert gc.get_freeze_count() > 0
