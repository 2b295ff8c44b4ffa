"""Train one role end to end: data → examples → model → weights, chart and manifest."""

from __future__ import annotations

import json
import platform
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared.errors import ConfigurationError
from shared.prompts.lab import PROMPT_VERSION
from tandem.datasets import Split
from tandem.lab.configs import V1, Pair, Role, TrainPlan
from tandem.lab.corpus import TOKENIZER_DIR, corpus_digest, load_split, role_examples
from tandem.lab.training import Checkpointer, save_loss_curve, train

MANIFEST = "manifest.json"
LOSS_CHART = "loss_curve.png"


def _records(
    data_dir: Path, domains: tuple[str, ...], split: Split, count: int, difficulty: str
) -> list[Any]:
    records = []
    for domain in domains:
        found = load_split(data_dir, domain, split, limit=count, difficulty=difficulty)
        if len(found) < count:
            raise ConfigurationError(
                f"{data_dir} has {len(found)} {domain} {split} questions, {count} needed; "
                "run `tandem lab data` (with a larger --train-questions if needed)",
                field="data_dir",
            )
        records += found
    return records


def train_role(
    role: Role,
    data_dir: Path,
    out_dir: Path,
    plan: TrainPlan,
    *,
    threads: int = 1,
    progress: bool = True,
    architecture_overrides: dict[str, int] | None = None,
    init_from: Path | None = None,
    pair: Pair = V1,
    checkpoint: Path | None = None,
    checkpoint_seconds: float = 180.0,
    log: Callable[[str], None] | None = None,
    stop_at: int | None = None,
    on_checkpointer: Callable[[Checkpointer], None] | None = None,
) -> dict[str, Any]:
    """Train ``role`` of ``pair`` and save it to ``out_dir``.

    ``init_from`` continues from a saved model of the same role (a further training stage with a
    fresh optimizer and learning-rate schedule); its manifest is kept under ``stages``.
    ``checkpoint`` names the file a run saves its whole state to every ``checkpoint_seconds``
    and resumes from when run again; it is removed once the model is saved. ``stop_at`` ends
    the run after that step (raising :class:`tandem.lab.training.Interrupted`).
    """
    import dataclasses

    import torch
    import transformers
    from transformers import AutoTokenizer, GenerationConfig, LlamaForCausalLM

    torch.set_num_threads(threads)
    torch.manual_seed(plan.seed)
    random.seed(plan.seed)
    tokenizer_dir = data_dir / TOKENIZER_DIR
    if not tokenizer_dir.exists():
        raise ConfigurationError(
            f"no tokenizer in {tokenizer_dir}; run `tandem lab data` first", field="data_dir"
        )
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    train_examples = role_examples(
        role,
        tokenizer,
        _records(data_dir, pair.domains, Split.TRAIN, plan.questions, plan.difficulty),
        plan.random_prefixes,
        plan.seed,
        plan.extra_full,
        plan.sufficiency,
    )
    validation_examples = role_examples(
        role,
        tokenizer,
        _records(
            data_dir, pair.domains, Split.VALIDATION, plan.validation_questions, plan.difficulty
        ),
        plan.random_prefixes,
        plan.seed + 1,
        sufficiency=plan.sufficiency,
    )
    architecture = dataclasses.replace(pair.architectures[role], **(architecture_overrides or {}))
    config = architecture.llama_config(
        len(tokenizer),
        int(tokenizer.bos_token_id),
        int(tokenizer.eos_token_id),
        int(tokenizer.pad_token_id),
    )
    previous: dict[str, Any] | None = None
    if init_from is not None:
        previous = read_manifest(init_from)
        if previous["role"] != role.value:
            raise ConfigurationError(f"{init_from} holds a {previous['role']}, not a {role.value}")
        model = LlamaForCausalLM.from_pretrained(str(init_from), dtype=torch.float32)
        keys = (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
        )
        if any(getattr(model.config, k) != getattr(config, k) for k in keys):
            raise ConfigurationError(f"{init_from} has another architecture than this plan")
    else:
        model = LlamaForCausalLM(config)
    parameters = sum(p.numel() for p in model.parameters())
    corpus_sha256 = corpus_digest(train_examples)
    checkpointer = None
    if checkpoint is not None:
        fingerprint = json.dumps(
            [corpus_sha256, plan.to_dict(), dataclasses.asdict(architecture)], sort_keys=True
        )
        checkpointer = Checkpointer(checkpoint, checkpoint_seconds, fingerprint)
        if on_checkpointer is not None:  # e.g. a signal handler that asks it to stop
            on_checkpointer(checkpointer)
    if log is not None:
        log(
            f"{pair.name} {role.value}: {parameters:,} parameters, {len(train_examples):,} "
            f"training examples, {plan.steps} steps of {plan.batch_size}"
        )
    result = train(
        model,
        train_examples,
        validation_examples,
        plan,
        pad_id=int(tokenizer.pad_token_id),
        progress=progress,
        checkpointer=checkpointer,
        log=log,
        stop_at=stop_at,
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
        do_sample=False,
    )
    # bfloat16 storage halves the committed files; loaders upcast or run it as they choose.
    model.bfloat16().save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))
    save_loss_curve(result, out_dir / LOSS_CHART, f"lab {role.value} ({parameters / 1e6:.2f} M)")
    data_info = json.loads((data_dir / "data.json").read_text())
    manifest: dict[str, Any] = {
        "role": role.value,
        "prompt_version": PROMPT_VERSION,
        "seed": plan.seed,
        "parameters": parameters,
        "architecture": dataclasses.asdict(architecture),
        "plan": plan.to_dict(),
        "pair": pair.name,
        "data": {
            "domains": list(pair.domains),
            "difficulty": plan.difficulty,
            "generator_seed": data_info["seed"],
            "train_questions_per_domain": plan.questions,
            "examples": len(train_examples),
            "example_tokens": sum(len(e.input_ids) for e in train_examples),
            "corpus_sha256": corpus_sha256,
            "files": data_info["files"],
        },
        "training": {
            **result.to_dict(),
            "threads": threads,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "machine": platform.machine(),
        },
        "accuracy": None,
        "commands": [
            f"tandem lab data{pair_flag(pair)}",
            f"tandem lab train{pair_flag(pair)} --role {role.value}",
            f"tandem lab eval{pair_flag(pair)}",
        ],
    }
    if previous is not None:
        stages = previous.pop("stages", [])
        previous.pop("accuracy", None)
        manifest["stages"] = [*stages, {k: previous[k] for k in ("plan", "data", "training")}]
        manifest["training"]["total_seconds"] = round(
            sum(s["training"]["seconds"] for s in manifest["stages"]) + result.seconds, 1
        )
        manifest["commands"] = [
            *previous["commands"][:-1],
            f"tandem lab train --role {role.value} --init-from {init_from} "
            f"--steps {plan.steps} --questions {plan.questions}",
            "tandem lab eval",
        ]
    write_manifest(out_dir, manifest)
    if checkpointer is not None:
        checkpointer.remove()
    return manifest


def pair_flag(pair: Pair) -> str:
    """The ``--pair`` option of a command for ``pair`` (none for the default pair)."""
    return "" if pair is V1 else f" --pair {pair.name}"


def read_manifest(model_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((model_dir / MANIFEST).read_text())
    return data


def write_manifest(model_dir: Path, manifest: dict[str, Any]) -> None:
    (model_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
