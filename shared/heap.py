"""Start-up objects kept out of the cyclic garbage collector's scans.

A worker or API process allocates some 200,000 long-lived objects while it imports and builds
its app (modules, ORM mappers, pydantic models, Celery's registry) and keeps them until it exits.
Every full collection still walks all of them: about 0.13 s of CPU each time in a worker
(measured with ``gc.callbacks`` under ``benchmarks/pipeline_bench.py``), a pause that lands on
whichever step is running. Frozen, they sit in the permanent generation that no collection scans;
what the process allocates later is collected as before.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect start-up garbage, then freeze what survives; returns how many objects are frozen.

    Called once the process has built what it serves with, and again in each prefork child
    (its parent froze before forking, so the inherited heap stays shared copy-on-write)."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
