"""Sizes of the lab pair and how each is trained; the single source of the numbers.

The coordinator (~5 M parameters) and the executor (~0.5 M, about ten times fewer) are plain
``LlamaForCausalLM`` models, so any Hugging Face loader (the engine server's transformers backend
included) reads them with no project code. Training sizes are set so each model trains in well
under half an hour on one CPU thread.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import LlamaConfig

ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = ROOT / "models" / "lab"
DATA_DIR = ROOT / ".tandem" / "lab" / "data"
DOMAINS = ("catalog", "lists")
SEED = 1234


class Role(StrEnum):
    COORDINATOR = "coordinator"
    EXECUTOR = "executor"


@dataclass(frozen=True)
class Architecture:
    hidden_size: int
    layers: int
    heads: int
    intermediate_size: int
    max_positions: int = 384

    def llama_config(self, vocab_size: int, bos_id: int, eos_id: int, pad_id: int) -> LlamaConfig:
        from transformers import LlamaConfig

        return LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.layers,
            num_attention_heads=self.heads,
            num_key_value_heads=self.heads,
            max_position_embeddings=self.max_positions,
            tie_word_embeddings=True,
            bos_token_id=bos_id,
            eos_token_id=eos_id,
            pad_token_id=pad_id,
        )


@dataclass(frozen=True)
class TrainPlan:
    """How one role is trained. ``questions`` is per domain, taken from the train split."""

    questions: int
    steps: int
    batch_size: int
    learning_rate: float
    warmup_steps: int
    # Executor only: random insight-prefix lengths per question, besides none and all.
    random_prefixes: int = 0
    # Executor only: extra copies of the all-insights example per question (copying the
    # coordinator's equations must pay off more than recomputing them).
    extra_full: int = 0
    validation_questions: int = 60
    eval_every: int = 100
    seed: int = SEED

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


ARCHITECTURES: dict[Role, Architecture] = {
    Role.COORDINATOR: Architecture(hidden_size=256, layers=6, heads=8, intermediate_size=768),
    Role.EXECUTOR: Architecture(hidden_size=96, layers=4, heads=2, intermediate_size=256),
}

PLANS: dict[Role, TrainPlan] = {
    Role.COORDINATOR: TrainPlan(
        questions=6000, steps=1500, batch_size=32, learning_rate=1.5e-3, warmup_steps=60
    ),
    Role.EXECUTOR: TrainPlan(
        questions=8000,
        steps=2500,
        batch_size=32,
        learning_rate=2e-3,
        warmup_steps=100,
        random_prefixes=2,
        extra_full=1,
    ),
}

# Held-out sizes written by ``tandem lab data`` (per domain).
VALIDATION_QUESTIONS = 500
TEST_QUESTIONS = 300
# Insight-token budgets at which the executor is measured with the coordinator's insights.
EVAL_BUDGETS = (8, 16, 24, 32)


def plan_for(role: Role, **overrides: Any) -> TrainPlan:
    return replace(PLANS[role], **overrides)
