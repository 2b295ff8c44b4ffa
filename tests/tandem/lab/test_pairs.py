"""The lab pairs' configuration: v1 unchanged, v2 sized and fed as its design says."""

from __future__ import annotations

import dataclasses
import json

import pytest
from transformers import LlamaForCausalLM

from tandem.commands.lab import data_write
from tandem.datasets import Split
from tandem.lab.configs import DOMAINS, MODELS_DIR, PAIRS, V1, V2, V3, Role
from tandem.lab.corpus import LAB_PRESET, load_split, split_path


def parameters(role: Role, vocab_size: int) -> int:
    config = V2.architectures[role].llama_config(vocab_size, 1, 2, 0)
    return sum(p.numel() for p in LlamaForCausalLM(config).parameters())


def test_v1_is_the_served_pair_and_v2_lives_beside_it():
    assert PAIRS == {"v1": V1, "v2": V2, "v3": V3}
    assert V1.domains == DOMAINS and V1.models_dir == MODELS_DIR
    assert V2.models_dir == MODELS_DIR / "v2"
    assert V2.checkpoints_dir == MODELS_DIR / "v2" / "checkpoints"
    assert V2.data_dir != V1.data_dir


def test_v3_is_v2_with_an_executor_taught_what_suffices():
    assert V3.data_dir == V2.data_dir and V3.domains == V2.domains
    assert V3.architectures == V2.architectures
    assert V3.plans[Role.COORDINATOR] == V2.plans[Role.COORDINATOR]
    executor = V3.plans[Role.EXECUTOR]
    assert executor.sufficiency == 1 and V2.plans[Role.EXECUTOR].sufficiency == 0
    assert dataclasses.replace(executor, sufficiency=0) == V2.plans[Role.EXECUTOR]
    # v3 serves v2's coordinator, not a copy of it.
    assert (V3.models_dir / "coordinator").resolve() == (V2.models_dir / "coordinator").resolve()


@pytest.mark.parametrize("vocab_size", [800, 920, 1024])
def test_v2_parameter_ratio_is_near_the_papers(vocab_size):
    ratio = parameters(Role.COORDINATOR, vocab_size) / parameters(Role.EXECUTOR, vocab_size)
    assert 4.3 <= ratio <= 4.9  # the paper's pair: 4.57


def test_v2_executor_reads_facts_the_coordinator_learns():
    assert V2.plans[Role.EXECUTOR].difficulty == "reader"
    assert V2.plans[Role.COORDINATOR].difficulty == LAB_PRESET
    assert V2.test_questions >= 1000
    assert list(V2.eval_budgets) == sorted(V2.eval_budgets)


def test_v2_data_has_a_reader_train_split_and_fixed_world_held_out_splits(tmp_path):
    small = dataclasses.replace(V2, validation_questions=20, test_questions=30)
    summary = data_write(small, tmp_path, 40, seed=9)
    files = summary["files"]
    assert isinstance(files, dict)
    names = set(files)
    for domain in V2.domains:
        for split, preset in [
            (Split.TRAIN, LAB_PRESET),
            (Split.TRAIN, "reader"),
            (Split.VALIDATION, "reader"),
            (Split.VALIDATION, LAB_PRESET),
            (Split.TEST, LAB_PRESET),
        ]:
            assert split_path(tmp_path, domain, split, preset).name in names
        assert split_path(tmp_path, domain, Split.TEST, "reader").name not in names
        test = load_split(tmp_path, domain, Split.TEST)
        assert len(test) == 30 and all(r.meta["difficulty"] == LAB_PRESET for r in test)
        reader = load_split(tmp_path, domain, Split.TRAIN, difficulty="reader")
        assert all(r.meta["difficulty"] == "reader" for r in reader)
    assert json.loads((tmp_path / "data.json").read_text())["vocab_size"] == summary["vocab_size"]
