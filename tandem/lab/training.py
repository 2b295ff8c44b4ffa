"""The training loop of both roles: seeded, length-bucketed batches, AdamW with warmup and
cosine decay, a tqdm progress bar, periodic validation loss, and a loss-curve chart.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tandem.lab.configs import TrainPlan
from tandem.lab.corpus import IGNORE, Example

if TYPE_CHECKING:
    import torch
    from transformers import LlamaForCausalLM


@dataclass
class TrainResult:
    steps: int
    seconds: float
    tokens: int
    cpu_seconds: float = 0.0
    train_loss: list[tuple[int, float]] = field(default_factory=list)
    validation_loss: list[tuple[int, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "steps": self.steps,
            "seconds": round(self.seconds, 1),
            "cpu_seconds": round(self.cpu_seconds, 1),
            "tokens": self.tokens,
            "final_train_loss": self.train_loss[-1][1] if self.train_loss else None,
            "final_validation_loss": (
                self.validation_loss[-1][1] if self.validation_loss else None
            ),
        }


def batches(examples: Sequence[Example], batch_size: int, rng: random.Random) -> list[list[int]]:
    """One epoch of index batches: shuffled, then sorted by length within windows of 50 batches
    so little compute goes to padding, then the batches themselves shuffled."""
    order = list(range(len(examples)))
    rng.shuffle(order)
    window = batch_size * 50
    result: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: len(examples[i].input_ids))
        result += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(result)
    return result


def collate(examples: Sequence[Example], pad_id: int) -> dict[str, torch.Tensor]:
    import torch

    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        ids[row, :n] = torch.tensor(example.input_ids)
        labels[row, :n] = torch.tensor(example.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def learning_rate(step: int, plan: TrainPlan) -> float:
    if step < plan.warmup_steps:
        return plan.learning_rate * (step + 1) / plan.warmup_steps
    progress = (step - plan.warmup_steps) / max(1, plan.steps - plan.warmup_steps)
    return plan.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def validation_loss(
    model: LlamaForCausalLM, examples: Sequence[Example], pad_id: int, batch_size: int = 64
) -> float:
    import torch

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            batch = collate(examples[start : start + batch_size], pad_id)
            n = int((batch["labels"][:, 1:] != IGNORE).sum())
            total += float(model(**batch).loss) * n
            count += n
    model.train()
    return total / max(1, count)


def train(
    model: LlamaForCausalLM,
    train_examples: Sequence[Example],
    validation_examples: Sequence[Example],
    plan: TrainPlan,
    pad_id: int,
    progress: bool = True,
) -> TrainResult:
    import torch
    from tqdm import tqdm

    rng = random.Random(plan.seed)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "norm" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2 or "norm" in n]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=plan.learning_rate,
        betas=(0.9, 0.95),
    )
    result = TrainResult(steps=plan.steps, seconds=0.0, tokens=0)
    queue: list[list[int]] = []
    smoothed: float | None = None
    model.train()
    started, cpu_started = time.perf_counter(), time.process_time()
    bar = tqdm(range(plan.steps), desc="train", disable=not progress, mininterval=2.0)
    for step in bar:
        if not queue:
            queue = batches(train_examples, plan.batch_size, rng)
        batch = collate([train_examples[i] for i in queue.pop()], pad_id)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, plan)
        loss = model(**batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        result.tokens += int(batch["attention_mask"].sum())
        value = float(loss.detach())
        smoothed = value if smoothed is None else 0.95 * smoothed + 0.05 * value
        if step % 10 == 0 or step == plan.steps - 1:
            result.train_loss.append((step, round(value, 4)))
            bar.set_postfix(loss=f"{smoothed:.3f}")
        if validation_examples and ((step + 1) % plan.eval_every == 0 or step == plan.steps - 1):
            val = validation_loss(model, validation_examples, pad_id)
            result.validation_loss.append((step + 1, round(val, 4)))
            bar.set_postfix(loss=f"{smoothed:.3f}", val=f"{val:.3f}")
    result.seconds = time.perf_counter() - started
    result.cpu_seconds = time.process_time() - cpu_started
    model.eval()
    return result


def save_loss_curve(result: TrainResult, path: Path, title: str) -> None:
    """The loss curve as a PNG chart, and the numbers behind it as JSON next to it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3.6), dpi=100)
    if result.train_loss:
        steps, losses = zip(*result.train_loss, strict=True)
        axis.plot(steps, losses, label="train (batch)", linewidth=0.8, alpha=0.7)
    if result.validation_loss:
        steps, losses = zip(*result.validation_loss, strict=True)
        axis.plot(steps, losses, label="validation", marker="o", markersize=3)
    axis.set_yscale("log")
    axis.set_xlabel("step")
    axis.set_ylabel("cross-entropy (nats/token)")
    axis.set_title(title)
    axis.grid(True, alpha=0.3)
    axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    path.with_suffix(".json").write_text(
        json.dumps({"train": result.train_loss, "validation": result.validation_loss}) + "\n"
    )
