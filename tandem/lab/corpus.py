"""Training corpora of the two roles, built from generated task records.

- Coordinator: each question twice: insights then solution (loss on both, so it learns to write
  insights and the end marker), and solution with no insights (how it answers alone).
- Executor: each question with no insights, with all of them (plus ``extra_full`` more
  copies), and with ``random_prefixes`` random token-prefix lengths in between, so across the
  corpus every prefix length occurs. A
  prefix is cut in tokens and decoded, exactly as insights written by the coordinator are cut
  at a token budget at inference.

The loss never covers the prompt: a model is only taught what it must write.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shared.prompts.lab import (
    INSIGHT_END,
    executor_prompt,
    insight_prompt,
    insights_text,
    solution_text,
)
from tandem.datasets import Split, TaskRecord, generate, read_jsonl, write_jsonl
from tandem.lab.configs import DOMAINS, TEST_QUESTIONS, VALIDATION_QUESTIONS, Role

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

IGNORE = -100
TOKENIZER_DIR = "tokenizer"


@dataclass(frozen=True)
class Example:
    input_ids: list[int]
    labels: list[int]


# Where a domain's insights stop listing facts (``tandem.datasets.worlds``: ``Retrieval``, then
# the plan).
PLAN_MARK = "Plan:"


def _pair(tokenizer: PreTrainedTokenizerBase, prompt: str, completion: str) -> Example:
    prompt_ids = tokenizer(prompt)["input_ids"]
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    return Example(prompt_ids + completion_ids, [IGNORE] * len(prompt_ids) + completion_ids)


def insight_ids(tokenizer: PreTrainedTokenizerBase, insights: str) -> list[int]:
    return list(tokenizer(insights_text(insights), add_special_tokens=False)["input_ids"])


def truncate_ids(tokenizer: PreTrainedTokenizerBase, ids: Sequence[int], budget: int | None) -> str:
    """The insight text made of the first ``budget`` tokens (all of them for None)."""
    kept = list(ids) if budget is None else list(ids[:budget])
    return str(tokenizer.decode(kept, skip_special_tokens=True)).strip()


def _taught_insights(
    tokenizer: PreTrainedTokenizerBase, record: TaskRecord, insights: str
) -> Example:
    """``insights``, the end marker and the solution after the insight prompt, all with loss."""
    completion = f"{insights_text(insights)}{INSIGHT_END}\nS:" + solution_text(record.solution)
    return _pair(tokenizer, insight_prompt(record.question), completion)


def facts_budget(tokenizer: PreTrainedTokenizerBase, ids: Sequence[int], insights: str) -> int:
    """The fewest insight tokens whose text holds every fact before the plan (0: none needed)."""
    facts = insights.split(PLAN_MARK, 1)[0].strip()
    if not facts:
        return 0
    return next(
        (n for n in range(1, len(ids) + 1) if truncate_ids(tokenizer, ids, n).startswith(facts)),
        len(ids),
    )


def coordinator_examples(
    tokenizer: PreTrainedTokenizerBase, records: Iterable[TaskRecord]
) -> list[Example]:
    examples = []
    for record in records:
        examples.append(_taught_insights(tokenizer, record, record.insights))
        examples.append(
            _pair(tokenizer, executor_prompt(record.question), solution_text(record.solution))
        )
    return examples


def executor_examples(
    tokenizer: PreTrainedTokenizerBase,
    records: Iterable[TaskRecord],
    random_prefixes: int,
    seed: int,
    extra_full: int = 0,
    sufficiency: int = 0,
) -> list[Example]:
    rng = random.Random(seed)
    examples = []
    for record in records:
        ids = insight_ids(tokenizer, record.insights)
        budgets: list[int | None] = [0, None]
        budgets += [rng.randint(1, max(1, len(ids) - 1)) for _ in range(random_prefixes)]
        budgets += [None] * extra_full
        needed = facts_budget(tokenizer, ids, record.insights) if sufficiency else 0
        for _ in range(sufficiency):
            # Half of them end right after the facts, where a level's budget ends when it suffices.
            budgets.append(needed if rng.random() < 0.5 else rng.randint(needed, len(ids)))
        for budget in budgets:
            prefix = truncate_ids(tokenizer, ids, budget)
            if sufficiency and (budget is None or budget >= needed):
                examples.append(_taught_insights(tokenizer, record, prefix))
            else:
                prompt = executor_prompt(record.question, prefix)
                examples.append(_pair(tokenizer, prompt, solution_text(record.solution)))
    return examples


def role_examples(
    role: Role,
    tokenizer: PreTrainedTokenizerBase,
    records: Iterable[TaskRecord],
    random_prefixes: int,
    seed: int,
    extra_full: int = 0,
    sufficiency: int = 0,
) -> list[Example]:
    if role is Role.COORDINATOR:
        return coordinator_examples(tokenizer, records)
    return executor_examples(tokenizer, records, random_prefixes, seed, extra_full, sufficiency)


def corpus_digest(examples: Iterable[Example]) -> str:
    """sha256 over the exact token ids and loss masks a model is trained on."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update(json.dumps([example.input_ids, example.labels]).encode())
    return digest.hexdigest()


# --- the data directory ---------------------------------------------------------------------

LAB_PRESET = "lab"


def split_path(data_dir: Path, domain: str, split: Split, difficulty: str = LAB_PRESET) -> Path:
    preset = "" if difficulty == LAB_PRESET else f"{difficulty}-"
    return data_dir / f"{domain}-{preset}{split.value}.jsonl"


def write_data(
    data_dir: Path,
    train_questions: int,
    seed: int,
    vocab_size: int = 1024,
    *,
    domains: Sequence[str] = DOMAINS,
    validation_questions: int = VALIDATION_QUESTIONS,
    test_questions: int = TEST_QUESTIONS,
    train_presets: Sequence[str] = (LAB_PRESET,),
) -> dict[str, object]:
    """Write every split of every domain and the shared tokenizer; return a summary.

    Validation and test questions come from the ``lab`` preset (the fixed world). Each preset in
    ``train_presets`` gets a train split, and a validation split of its own when it is not the
    lab preset (a role's validation loss is measured on the kind of data it trains on).
    """
    from tandem.lab.tokenizer import build_tokenizer

    plans: list[tuple[str, Split, int]] = []
    for preset in train_presets:
        plans.append((preset, Split.TRAIN, train_questions))
        if preset != LAB_PRESET:
            plans.append((preset, Split.VALIDATION, validation_questions))
    plans += [
        (LAB_PRESET, Split.VALIDATION, validation_questions),
        (LAB_PRESET, Split.TEST, test_questions),
    ]
    summary: dict[str, object] = {"seed": seed, "files": {}}
    files: dict[str, dict[str, object]] = {}
    train_texts: list[str] = []
    for domain in domains:
        for preset, split, count in plans:
            records = generate(domain, split, count, seed=seed, difficulty=preset)
            path = split_path(data_dir, domain, split, preset)
            write_jsonl(path, records)
            files[path.name] = {
                "records": count,
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            }
            if split is Split.TRAIN:
                train_texts += [
                    executor_prompt(r.question, r.insights) + solution_text(r.solution)
                    for r in records
                ]
    tokenizer = build_tokenizer(train_texts, vocab_size=vocab_size)
    tokenizer.save_pretrained(str(data_dir / TOKENIZER_DIR))
    summary["files"] = files
    summary["vocab_size"] = len(tokenizer)
    (data_dir / "data.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def load_split(
    data_dir: Path,
    domain: str,
    split: Split,
    limit: int | None = None,
    difficulty: str = LAB_PRESET,
) -> list[TaskRecord]:
    records = list(read_jsonl(split_path(data_dir, domain, split, difficulty)))
    return records if limit is None else records[:limit]
