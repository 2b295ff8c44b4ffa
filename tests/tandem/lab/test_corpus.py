"""Prompt formats and the training corpora built from them."""

from __future__ import annotations

from transformers import AutoTokenizer

from shared.prompts.lab import executor_prompt, insight_prompt
from tandem.datasets import Split
from tandem.lab.configs import DOMAINS, Role
from tandem.lab.corpus import (
    IGNORE,
    TOKENIZER_DIR,
    corpus_digest,
    insight_ids,
    load_split,
    role_examples,
    truncate_ids,
)


def test_prompt_formats():
    assert insight_prompt(" What? ") == "Q: What?\nI:"
    assert executor_prompt("What?") == "Q: What?\nI:</I>\nS:"
    assert executor_prompt("What?", " Goal: x. ") == "Q: What?\nI: Goal: x.</I>\nS:"
    # The executor prompt continues the insight prompt, so one model can do both in one pass.
    assert executor_prompt("Q1", "Goal: x.").startswith(insight_prompt("Q1"))


def test_loss_covers_only_the_completion(lab_data):
    tokenizer = AutoTokenizer.from_pretrained(str(lab_data / TOKENIZER_DIR))
    records = load_split(lab_data, DOMAINS[0], Split.TRAIN, limit=5)
    for role in Role:
        for example in role_examples(role, tokenizer, records, random_prefixes=2, seed=0):
            assert len(example.input_ids) == len(example.labels)
            first = next(i for i, label in enumerate(example.labels) if label != IGNORE)
            assert all(label != IGNORE for label in example.labels[first:])
            prompt = str(tokenizer.decode(example.input_ids[:first], skip_special_tokens=True))
            assert prompt.startswith("Q: ") and prompt.endswith(("I:", "S:"))
            assert example.labels[-1] == tokenizer.eos_token_id


def test_executor_sees_no_all_and_partial_insights(lab_data):
    tokenizer = AutoTokenizer.from_pretrained(str(lab_data / TOKENIZER_DIR))
    record = load_split(lab_data, "lists", Split.TRAIN, limit=1)[0]
    examples = role_examples(Role.EXECUTOR, tokenizer, [record], random_prefixes=3, seed=1)
    prompts = [
        str(
            tokenizer.decode(
                [t for t, lab in zip(e.input_ids, e.labels, strict=True) if lab == IGNORE],
                skip_special_tokens=True,
            )
        )
        for e in examples
    ]
    assert prompts[0] == executor_prompt(record.question)
    assert prompts[1] == executor_prompt(record.question, record.insights)
    full = len(insight_ids(tokenizer, record.insights))
    for prompt in prompts[2:]:
        insight = prompt.split("\nI:", 1)[1].split("</I>", 1)[0].strip()
        assert record.insights.startswith(insight) and 0 < len(insight) < len(record.insights)
    assert truncate_ids(tokenizer, insight_ids(tokenizer, record.insights), full) == record.insights


def test_corpus_digest_is_stable_and_sensitive(lab_data):
    tokenizer = AutoTokenizer.from_pretrained(str(lab_data / TOKENIZER_DIR))
    records = load_split(lab_data, DOMAINS[0], Split.TRAIN, limit=20)
    a = role_examples(Role.EXECUTOR, tokenizer, records, random_prefixes=2, seed=0)
    b = role_examples(Role.EXECUTOR, tokenizer, records, random_prefixes=2, seed=0)
    c = role_examples(Role.EXECUTOR, tokenizer, records, random_prefixes=2, seed=1)
    assert corpus_digest(a) == corpus_digest(b) != corpus_digest(c)
