"""Sizes of the lab pairs and how each is trained; the single source of the numbers.

Every model is a plain ``LlamaForCausalLM``, so any Hugging Face loader (the engine server's
transformers backend included) reads it with no project code.

- **v1** (``models/lab/coordinator``, ``models/lab/executor``; the pair the stack serves): a
  ~5 M coordinator and a ~0.5 M executor on catalog and lists, each trained in well under an
  hour on one CPU thread.
- **v2** (``models/lab/v2``): the fair analogue of the paper (see ``models/lab/README.md``): a
  coordinator about 4.6 times the executor's size on the known-world domains shop and ages, the
  executor trained only on per-question worlds so it can read facts but never learn them.
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
    # Executor only: examples per question whose insights hold every left-out fact, with the
    # loss on the insights too (``tandem.lab.corpus``; pair v3).
    sufficiency: int = 0
    validation_questions: int = 60
    eval_every: int = 100
    seed: int = SEED
    # Which difficulty preset of each domain the training questions come from (v2's executor
    # trains on the per-question "reader" worlds).
    difficulty: str = "lab"

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


@dataclass(frozen=True)
class Pair:
    """One coordinator/executor pair: its domains, sizes, plans, held-out sizes and directories.

    ``domains[0]`` is the pair's main domain (its classifier is trained there); the others are
    for cross-domain measurement. Validation and test questions always come from the domains'
    ``lab`` preset (the fixed world), whatever preset a role trained on.
    """

    name: str
    domains: tuple[str, ...]
    architectures: dict[Role, Architecture]
    plans: dict[Role, TrainPlan]
    validation_questions: int
    test_questions: int
    eval_budgets: tuple[int, ...]
    models_dir: Path
    data_dir: Path
    vocab_size: int = 1024

    @property
    def train_questions(self) -> int:
        return max(plan.questions for plan in self.plans.values())

    @property
    def checkpoints_dir(self) -> Path:
        return self.models_dir / "checkpoints"

    def plan_for(self, role: Role, **overrides: Any) -> TrainPlan:
        return replace(self.plans[role], **overrides)


def plan_for(role: Role, **overrides: Any) -> TrainPlan:
    return V1.plan_for(role, **overrides)


V1 = Pair(
    name="v1",
    domains=DOMAINS,
    architectures=ARCHITECTURES,
    plans=PLANS,
    validation_questions=VALIDATION_QUESTIONS,
    test_questions=TEST_QUESTIONS,
    eval_budgets=EVAL_BUDGETS,
    models_dir=MODELS_DIR,
    data_dir=DATA_DIR,
)

# v2: coordinator / executor = 4.6 (the paper's pair: 4.57). Both plans run to the plateau of
# their validation loss on one thread (curves: models/lab/v2/<role>/loss_curve.png).
V2 = Pair(
    name="v2",
    domains=("shop", "ages"),
    architectures={
        Role.COORDINATOR: Architecture(hidden_size=192, layers=6, heads=6, intermediate_size=512),
        Role.EXECUTOR: Architecture(hidden_size=112, layers=4, heads=4, intermediate_size=232),
    },
    plans={
        Role.COORDINATOR: TrainPlan(
            questions=12000,
            steps=5000,
            batch_size=32,
            learning_rate=1.5e-3,
            warmup_steps=100,
            validation_questions=100,
            eval_every=200,
        ),
        Role.EXECUTOR: TrainPlan(
            questions=12000,
            steps=6000,
            batch_size=32,
            learning_rate=2e-3,
            warmup_steps=100,
            random_prefixes=2,
            validation_questions=100,
            eval_every=200,
            difficulty="reader",
        ),
    },
    validation_questions=1000,
    test_questions=1500,
    # Insight budgets that end just after the first, second and third left-out fact.
    eval_budgets=(7, 12, 17, 22),
    models_dir=MODELS_DIR / "v2",
    data_dir=DATA_DIR.parent / "v2" / "data",
)

# v3: v2's worlds, data and coordinator; an executor that also learns what sufficient insights
# look like (the end marker after a prefix that lacks a fact becomes improbable to it), so its
# prompt log-probs carry the sufficiency signal in both domains, not only each domain's surface.
V3 = replace(
    V2,
    name="v3",
    plans={**V2.plans, Role.EXECUTOR: replace(V2.plans[Role.EXECUTOR], sufficiency=1)},
    models_dir=MODELS_DIR / "v3",
)

PAIRS: dict[str, Pair] = {pair.name: pair for pair in (V1, V2, V3)}
