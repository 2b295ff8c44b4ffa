"""A scorer loads and runs its classifier through onnxruntime alone: importing the ``onnx``
package takes about a second, which every scorer process's first job used to wait."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.usefixtures("database_url")  # the per-process test database

PROBE = """
import sys

import services.scorer.tasks  # what the worker imports
from shared.classifier import ClassifierRuntime
from shared.db.session import unit_of_work
from shared.features import FEATURE_NAMES

with unit_of_work() as session:
    loaded = ClassifierRuntime().current(session)
print(loaded.score([0.5] * len(FEATURE_NAMES)), "onnx" in sys.modules)
"""


def test_scoring_does_not_import_the_onnx_package() -> None:
    # A fresh interpreter: this test process may have imported onnx for other tests.
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    score, imported = done.stdout.split()
    assert 0.0 <= float(score) <= 1.0
    assert imported == "False", "the scorer imported onnx"
