"""The training loop of both roles: seeded, length-bucketed batches, AdamW with warmup and
cosine decay, a tqdm progress bar or a progress log, periodic validation loss, checkpoints a
run resumes from, and a loss-curve chart.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import time
from collections.abc import Callable, Sequence
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


@dataclass
class Progress:
    """Where a training run stands: everything besides the weights and optimizer that a resumed
    run needs to continue exactly as an uninterrupted one would."""

    step: int = 0
    queue: list[list[int]] = field(default_factory=list)  # this epoch's batches still to run
    rng_state: object = None  # the batch shuffler's state (``random.Random.getstate()``)
    smoothed: float | None = None
    result: TrainResult | None = None


class Checkpointer:
    """Saves a run's full state every ``every_seconds`` (and when asked to stop) to one file,
    written atomically so a kill mid-write leaves the previous checkpoint intact, and loads it
    back. Only the latest checkpoint is kept."""

    def __init__(self, path: Path, every_seconds: float, fingerprint: str) -> None:
        self.path = path
        self.every_seconds = every_seconds
        # The corpus and plan a checkpoint belongs to: resuming onto other data is refused.
        self.fingerprint = fingerprint
        self.last_saved = time.monotonic()
        self.stop_requested = False

    def due(self) -> bool:
        return self.stop_requested or time.monotonic() - self.last_saved >= self.every_seconds

    def save(
        self, model: LlamaForCausalLM, optimizer: torch.optim.Optimizer, progress: Progress
    ) -> None:
        import torch

        assert progress.result is not None
        state = {
            "fingerprint": self.fingerprint,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": progress.step,
            "queue": progress.queue,
            "rng_state": progress.rng_state,
            "torch_rng_state": torch.get_rng_state(),
            "smoothed": progress.smoothed,
            "result": dataclasses.asdict(progress.result),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        torch.save(state, partial)
        os.replace(partial, self.path)
        self.path.with_suffix(".json").write_text(
            json.dumps(
                {
                    "step": progress.step,
                    "steps": progress.result.steps,
                    **progress.result.to_dict(),
                    "train": progress.result.train_loss,
                    "validation": progress.result.validation_loss,
                }
            )
            + "\n"
        )
        self.last_saved = time.monotonic()

    def load(self, model: LlamaForCausalLM, optimizer: torch.optim.Optimizer) -> Progress | None:
        """Restore ``model`` and ``optimizer`` and return the progress; None with no checkpoint."""
        import torch

        if not self.path.exists():
            return None
        # Plain tensors, numbers and lists only: no pickled code runs on load.
        state = torch.load(self.path, weights_only=True)
        if state["fingerprint"] != self.fingerprint:
            raise ValueError(
                f"{self.path} belongs to another corpus or plan; move it away to start afresh"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng_state"])
        result = TrainResult(**state["result"])
        result.train_loss = [tuple(point) for point in result.train_loss]  # type: ignore[misc]
        result.validation_loss = [tuple(point) for point in result.validation_loss]  # type: ignore[misc]
        return Progress(
            step=int(state["step"]),
            queue=[list(batch) for batch in state["queue"]],
            rng_state=state["rng_state"],
            smoothed=state["smoothed"],
            result=result,
        )

    def remove(self) -> None:
        """Drop the checkpoint and its progress file (the saved model carries the loss curve)."""
        self.path.unlink(missing_ok=True)
        self.path.with_suffix(".json").unlink(missing_ok=True)


def _optimizer(model: LlamaForCausalLM, plan: TrainPlan) -> torch.optim.Optimizer:
    import torch

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "norm" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2 or "norm" in n]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=plan.learning_rate,
        betas=(0.9, 0.95),
    )


def train(
    model: LlamaForCausalLM,
    train_examples: Sequence[Example],
    validation_examples: Sequence[Example],
    plan: TrainPlan,
    pad_id: int,
    progress: bool = True,
    checkpointer: Checkpointer | None = None,
    log: Callable[[str], None] | None = None,
    log_every: int = 50,
    stop_at: int | None = None,
) -> TrainResult:
    """Train ``model`` by ``plan``. With a ``checkpointer`` the run resumes from its checkpoint
    (weights, optimizer, step, batch order, shuffler state, loss history) and saves one every
    few minutes; the resumed run computes exactly what an uninterrupted one would. ``log``
    receives a progress line every ``log_every`` steps (step, loss, validation loss, s/step,
    ETA) for a log file, where a progress bar would not read well. ``stop_at`` ends the run
    after that step with a checkpoint (training in chunks), raising :class:`Interrupted`."""
    import torch
    from tqdm import tqdm

    rng = random.Random(plan.seed)
    optimizer = _optimizer(model, plan)
    state = checkpointer.load(model, optimizer) if checkpointer is not None else None
    if state is None:
        state = Progress(result=TrainResult(steps=plan.steps, seconds=0.0, tokens=0))
    else:
        rng.setstate(state.rng_state)  # type: ignore[arg-type]
        if log is not None:
            log(f"resumed at step {state.step}/{plan.steps} from {checkpointer.path}")  # type: ignore[union-attr]
    result = state.result
    assert result is not None
    model.train()
    started, cpu_started = time.perf_counter(), time.process_time()
    seconds_before, cpu_before = result.seconds, result.cpu_seconds
    window_started, window_step = started, state.step
    bar = tqdm(
        range(state.step, plan.steps),
        desc="train",
        disable=not progress,
        mininterval=2.0,
        initial=state.step,
        total=plan.steps,
    )
    for step in bar:
        if not state.queue:
            state.queue = batches(train_examples, plan.batch_size, rng)
        batch = collate([train_examples[i] for i in state.queue.pop()], pad_id)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, plan)
        loss = model(**batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        result.tokens += int(batch["attention_mask"].sum())
        value = float(loss.detach())
        state.smoothed = value if state.smoothed is None else 0.95 * state.smoothed + 0.05 * value
        if step % 10 == 0 or step == plan.steps - 1:
            result.train_loss.append((step, round(value, 4)))
            bar.set_postfix(loss=f"{state.smoothed:.3f}")
        if validation_examples and ((step + 1) % plan.eval_every == 0 or step == plan.steps - 1):
            val = validation_loss(model, validation_examples, pad_id)
            result.validation_loss.append((step + 1, round(val, 4)))
            bar.set_postfix(loss=f"{state.smoothed:.3f}", val=f"{val:.3f}")
        state.step = step + 1
        result.seconds = seconds_before + time.perf_counter() - started
        result.cpu_seconds = cpu_before + time.process_time() - cpu_started
        if log is not None and (state.step % log_every == 0 or state.step == plan.steps):
            now = time.perf_counter()
            per_step = (now - window_started) / max(1, state.step - window_step)
            window_started, window_step = now, state.step
            val_text = f"{result.validation_loss[-1][1]:.4f}" if result.validation_loss else "-"
            eta = per_step * (plan.steps - state.step)
            log(
                f"step {state.step}/{plan.steps} loss {state.smoothed:.4f} val {val_text} "
                f"{per_step:.2f} s/step ETA {eta / 60:.0f} min"
            )
        if checkpointer is not None and state.step == stop_at:
            checkpointer.stop_requested = True
        if checkpointer is not None and state.step < plan.steps and checkpointer.due():
            state.rng_state = rng.getstate()
            checkpointer.save(model, optimizer, state)
            if checkpointer.stop_requested:
                if log is not None:
                    log(f"stopped at step {state.step}; the checkpoint resumes it")
                raise Interrupted(state.step)
    model.eval()
    return result


class Interrupted(Exception):
    """Training stopped on request after saving a checkpoint at ``step``."""

    def __init__(self, step: int) -> None:
        super().__init__(f"training stopped at step {step}")
        self.step = step


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
