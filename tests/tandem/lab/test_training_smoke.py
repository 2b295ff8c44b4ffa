"""A few training steps of a tiny model through the real pipeline, and the saved directory."""

from __future__ import annotations

import json

import torch
from safetensors import safe_open
from transformers import AutoModelForCausalLM

from tandem.lab.configs import Role, plan_for
from tandem.lab.inference import LabModel
from tandem.lab.pipeline import LOSS_CHART, MANIFEST, train_role

TINY = {"hidden_size": 32, "layers": 1, "heads": 2, "intermediate_size": 64}


def test_tiny_training_run_learns_and_saves_a_loadable_model(lab_data, tmp_path):
    plan = plan_for(
        Role.EXECUTOR,
        questions=40,
        steps=40,
        batch_size=8,
        learning_rate=1e-2,
        warmup_steps=5,
        random_prefixes=1,
        extra_full=1,
        validation_questions=5,
        eval_every=20,
    )
    out = tmp_path / "executor"
    manifest = train_role(
        Role.EXECUTOR, lab_data, out, plan, progress=False, architecture_overrides=TINY
    )

    losses = [loss for _, loss in json.loads((out / "loss_curve.json").read_text())["train"]]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-3:]) / 3 < losses[0] * 0.7  # it learned something in 40 steps
    assert (out / LOSS_CHART).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    model = AutoModelForCausalLM.from_pretrained(str(out))
    assert type(model).__name__ == "LlamaForCausalLM"
    assert sum(p.numel() for p in model.parameters()) == manifest["parameters"]
    with safe_open(str(out / "model.safetensors"), "pt") as weights:
        assert {weights.get_tensor(k).dtype for k in weights.keys()} == {torch.bfloat16}  # noqa: SIM118
    saved = json.loads((out / MANIFEST).read_text())
    assert saved["seed"] == plan.seed and saved["data"]["corpus_sha256"]
    assert saved["data"]["examples"] == 2 * 40 * 4  # 2 domains x (none, all, 1 random, all)
    assert saved["training"]["steps"] == 40 and saved["training"]["seconds"] > 0

    lab_model = LabModel.load(out)
    generations = lab_model.generate(
        ["Q: Start with [1, 2]. Sort it. What is the result?\nI:</I>\nS:"] * 2, max_new_tokens=5
    )
    assert generations[0] == generations[1] and len(generations[0].ids) <= 5


def test_training_is_reproducible(lab_data, tmp_path):
    plan = plan_for(
        Role.COORDINATOR,
        questions=10,
        steps=3,
        batch_size=4,
        warmup_steps=1,
        validation_questions=2,
        eval_every=10,
    )
    first = train_role(
        Role.COORDINATOR,
        lab_data,
        tmp_path / "a",
        plan,
        progress=False,
        architecture_overrides=TINY,
    )
    second = train_role(
        Role.COORDINATOR,
        lab_data,
        tmp_path / "b",
        plan,
        progress=False,
        architecture_overrides=TINY,
    )
    assert first["data"]["corpus_sha256"] == second["data"]["corpus_sha256"]
    assert first["training"]["final_train_loss"] == second["training"]["final_train_loss"]
    a = (tmp_path / "a" / "model.safetensors").read_bytes()
    assert a == (tmp_path / "b" / "model.safetensors").read_bytes()


def test_a_further_stage_continues_from_saved_weights(lab_data, tmp_path):
    plan = plan_for(
        Role.COORDINATOR,
        questions=10,
        steps=6,
        batch_size=4,
        learning_rate=1e-2,
        warmup_steps=1,
        validation_questions=2,
        eval_every=10,
    )
    out = tmp_path / "coordinator"
    first = train_role(
        Role.COORDINATOR, lab_data, out, plan, progress=False, architecture_overrides=TINY
    )
    first_curve = json.loads((out / "loss_curve.json").read_text())["train"]
    second = train_role(
        Role.COORDINATOR,
        lab_data,
        out,
        plan,
        progress=False,
        architecture_overrides=TINY,
        init_from=out,
    )
    second_curve = json.loads((out / "loss_curve.json").read_text())["train"]
    assert second["stages"][0]["training"] == first["training"]
    assert second["training"]["total_seconds"] >= second["training"]["seconds"]
    assert any("--init-from" in command for command in second["commands"])
    # It continued from the saved weights rather than from a fresh initialisation.
    assert second_curve[0][1] < first_curve[0][1]
