"""Training in chunks: a run stopped at a checkpoint and resumed computes exactly what an
uninterrupted run computes, refuses a checkpoint of another corpus or plan, and leaves no
checkpoint behind once the model is saved."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from tandem.commands.lab import app, pair_checkpoint
from tandem.lab.configs import PAIRS, V2, Architecture, Role, TrainPlan
from tandem.lab.pipeline import MANIFEST, train_role
from tandem.lab.training import Interrupted

RUNS = ("whole", "chunked")
TINY = {"hidden_size": 32, "layers": 1, "heads": 2, "intermediate_size": 64}


def tiny_plan(**overrides: Any) -> TrainPlan:
    settings = {
        "questions": 12,
        "steps": 8,
        "batch_size": 4,
        "learning_rate": 1e-2,
        "warmup_steps": 2,
        "random_prefixes": 1,
        "validation_questions": 2,
        "eval_every": 4,
        "difficulty": "lab",
    }
    return V2.plan_for(Role.EXECUTOR, **(settings | overrides))


def run(
    lab_data: Path,
    out: Path,
    plan: TrainPlan,
    checkpoint: Path | None = None,
    stop_at: int | None = None,
    logs: list[str] | None = None,
) -> dict[str, Any]:
    return train_role(
        Role.EXECUTOR,
        lab_data,
        out,
        plan,
        progress=False,
        architecture_overrides=TINY,
        checkpoint=checkpoint,
        stop_at=stop_at,
        log=None if logs is None else logs.append,
    )


def test_a_resumed_run_equals_an_uninterrupted_one(lab_data, tmp_path):
    plan = tiny_plan()
    whole = run(lab_data, tmp_path / "whole", plan)
    checkpoint = tmp_path / "checkpoints" / "executor.pt"
    logs: list[str] = []
    with pytest.raises(Interrupted) as stopped:
        run(lab_data, tmp_path / "chunked", plan, checkpoint, stop_at=3, logs=logs)
    assert stopped.value.step == 3 and checkpoint.exists()
    progress = json.loads(checkpoint.with_suffix(".json").read_text())
    assert progress["step"] == 3 and [s for s, _ in progress["train"]] == [0]
    assert not (tmp_path / "chunked" / MANIFEST).exists()
    with pytest.raises(Interrupted):  # a second chunk, from the first checkpoint
        run(lab_data, tmp_path / "chunked", plan, checkpoint, stop_at=5, logs=logs)
    chunked = run(lab_data, tmp_path / "chunked", plan, checkpoint, logs=logs)

    assert any(line.startswith("resumed at step 3/8") for line in logs)
    assert any(line.startswith("resumed at step 5/8") for line in logs)
    assert any(line.startswith("step 8/8 loss ") and "s/step ETA" in line for line in logs)
    # The saved model (and its loss curve) replaces the checkpoint and its progress file.
    assert not checkpoint.exists() and not checkpoint.with_suffix(".json").exists()
    assert chunked["training"]["final_train_loss"] == whole["training"]["final_train_loss"]
    curves = [json.loads((tmp_path / name / "loss_curve.json").read_text()) for name in RUNS]
    assert curves[0] == curves[1] and curves[0]["validation"]
    weights = [(tmp_path / name / "model.safetensors").read_bytes() for name in RUNS]
    assert weights[0] == weights[1]


def test_a_checkpoint_of_another_plan_is_refused(lab_data, tmp_path):
    checkpoint = tmp_path / "executor.pt"
    with pytest.raises(Interrupted):
        run(lab_data, tmp_path / "a", tiny_plan(), checkpoint, stop_at=2)
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["step"] == 2 and saved["optimizer"]["state"]
    with pytest.raises(ValueError, match="another corpus or plan"):
        run(lab_data, tmp_path / "a", tiny_plan(learning_rate=5e-3), checkpoint)


def test_train_pair_resumes_and_skips_a_trained_role(lab_data, tmp_path, monkeypatch):
    # The driver over a pair whose plans are tiny, on the shared small data directory.
    pair = dataclasses.replace(
        V2,
        domains=("catalog", "lists"),
        plans={role: tiny_plan(steps=4) for role in Role},
        architectures={role: Architecture(**TINY) for role in Role},
    )
    monkeypatch.setitem(PAIRS, "v2", pair)
    args = ["train-pair", "--pair", "v2", "--data-dir", str(lab_data)]
    args += ["--models-dir", str(tmp_path)]
    runner = CliRunner()
    first = runner.invoke(app, [*args, "--until-step", "2"])
    assert first.exit_code == 0, first.output
    assert "executor: checkpoint at step 2" in first.output
    assert pair_checkpoint(tmp_path, Role.EXECUTOR).exists()
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    assert "resumed at step 2/4" in second.output
    for role in Role:
        assert json.loads((tmp_path / role.value / MANIFEST).read_text())["training"]["steps"] == 4
        assert not pair_checkpoint(tmp_path, role).exists()
    third = runner.invoke(app, args)
    assert "executor: already trained" in third.output
    assert "coordinator: already trained" in third.output
