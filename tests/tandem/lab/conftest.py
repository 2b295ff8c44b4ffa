"""A small generated data directory (splits + tokenizer) shared by the lab tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tandem.lab.corpus import write_data


@pytest.fixture(scope="session")
def lab_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("lab-data")
    write_data(data_dir, train_questions=300, seed=5)
    return data_dir
