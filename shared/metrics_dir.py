"""Where a process family's metrics live in prometheus_client's multiprocess mode.

Kept apart from :mod:`shared.metrics` because the directory must be set before
``prometheus_client`` is first imported (it picks its value class at import time): a launcher
calls :func:`prepare_multiprocess` and only then imports the service.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess(name: str) -> Path:
    """Point prometheus_client at a fresh directory for this process and its children.

    Fresh, because files left by a previous run would be summed into the new one's counters.
    """
    path = Path(tempfile.gettempdir()) / f"tandem-metrics-{name}-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(path)
    return path
