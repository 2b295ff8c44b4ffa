"""Prompt formats and the training corpora built from them."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from shared.prompts.lab import executor_prompt, insight_prompt
from tandem.datasets import Split, TaskRecord
from tandem.lab.configs import DOMAINS, Role
from tandem.lab.corpus import (
    IGNORE,
    PLAN_MARK,
    TOKENIZER_DIR,
    corpus_digest,
    executor_examples,
    facts_budget,
    insight_ids,
    load_split,
    role_examples,
    truncate_ids,
    write_data,
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


@pytest.fixture(scope="module")
def world_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Pair v2/v3's domains, with the executor's per-question ("reader") train split."""
    data_dir = tmp_path_factory.mktemp("world-data")
    write_data(
        data_dir,
        train_questions=60,
        seed=5,
        domains=("shop", "ages"),
        validation_questions=5,
        test_questions=5,
        train_presets=("reader",),
    )
    return data_dir


def _world_records(data_dir: Path) -> list[TaskRecord]:
    return [
        record
        for domain in ("shop", "ages")
        for record in load_split(data_dir, domain, Split.TRAIN, difficulty="reader")
    ]


def test_facts_budget_is_the_fewest_tokens_holding_every_left_out_fact(world_data):
    tokenizer = AutoTokenizer.from_pretrained(str(world_data / TOKENIZER_DIR))
    needs = set()
    for record in _world_records(world_data):
        ids = insight_ids(tokenizer, record.insights)
        facts = record.insights.split(PLAN_MARK, 1)[0].strip()
        need = facts_budget(tokenizer, ids, record.insights)
        needs.add(need > 0)
        assert truncate_ids(tokenizer, ids, need).startswith(facts)
        if need:
            assert not truncate_ids(tokenizer, ids, need - 1).startswith(facts)
        else:
            assert facts == ""
    assert needs == {True, False}  # questions that need no fact and questions that do


def test_the_loss_covers_insights_only_where_they_hold_every_fact(world_data):
    tokenizer = AutoTokenizer.from_pretrained(str(world_data / TOKENIZER_DIR))
    records = _world_records(world_data)
    with_loss = without = 0
    for record in records:
        facts = record.insights.split(PLAN_MARK, 1)[0].strip()
        examples = executor_examples(tokenizer, [record], random_prefixes=2, seed=3, sufficiency=1)
        assert len(examples) == 5  # none, all, two random prefixes, one that suffices
        covered = 0
        for example in examples:
            first = next(i for i, label in enumerate(example.labels) if label != IGNORE)
            prompt = str(tokenizer.decode(example.input_ids[:first], skip_special_tokens=True))
            taught = str(tokenizer.decode(example.input_ids[first:], skip_special_tokens=True))
            if prompt.endswith("I:"):  # the insights and the end marker are taught
                insight = taught.split("</I>", 1)[0].strip()
                assert insight.startswith(facts) and record.insights.startswith(insight)
                covered += 1
            else:  # a prefix that lacks a fact: the solution alone is taught, as in pair v2
                assert prompt.endswith("</I>\nS:")
                insight = prompt.split("\nI:", 1)[1].split("</I>", 1)[0].strip()
                assert facts and not insight.startswith(facts)
        assert covered >= 2  # all the insights, and the cut after the facts
        with_loss += covered
        without += len(examples) - covered
    assert with_loss and without


def test_without_sufficiency_the_executor_corpus_is_pair_v2s(world_data):
    tokenizer = AutoTokenizer.from_pretrained(str(world_data / TOKENIZER_DIR))
    records = _world_records(world_data)
    before = role_examples(Role.EXECUTOR, tokenizer, records, random_prefixes=2, seed=0)
    after = role_examples(
        Role.EXECUTOR, tokenizer, records, random_prefixes=2, seed=0, sufficiency=0
    )
    taught = role_examples(
        Role.EXECUTOR, tokenizer, records, random_prefixes=2, seed=0, sufficiency=1
    )
    assert corpus_digest(before) == corpus_digest(after) != corpus_digest(taught)
