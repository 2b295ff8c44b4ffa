"""The lab tokenizer: exact round trips, one token per digit, ``</I>`` as one ordinary token."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from shared.prompts.lab import INSIGHT_END, executor_prompt, solution_text
from tandem.datasets import Split, generate
from tandem.lab.configs import DOMAINS
from tandem.lab.corpus import TOKENIZER_DIR


@pytest.fixture(scope="module")
def tokenizer(lab_data):
    return AutoTokenizer.from_pretrained(str(lab_data / TOKENIZER_DIR))


def test_round_trip_on_held_out_text(tokenizer):
    for domain in DOMAINS:
        for record in generate(domain, Split.TEST, 40, seed=11):
            text = executor_prompt(record.question, record.insights) + f" {record.solution}"
            ids = tokenizer(text)["input_ids"]
            assert ids[0] == tokenizer.bos_token_id
            assert tokenizer.decode(ids, skip_special_tokens=True) == text


def test_round_trip_on_unseen_words_and_bytes(tokenizer):
    text = "Zyx owns 1234567 ümlauts & 3/4 of {x}\n\ttabs"
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text


def test_digits_are_single_tokens(tokenizer):
    ids = tokenizer("x 9071", add_special_tokens=False)["input_ids"]
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert [t.lstrip("Ġ") for t in tokens[-4:]] == ["9", "0", "7", "1"]


def test_insight_end_marker_is_one_kept_token(tokenizer):
    ids = tokenizer(f"Action: 5.{INSIGHT_END}\nS:", add_special_tokens=False)["input_ids"]
    marker = tokenizer.convert_tokens_to_ids(INSIGHT_END)
    assert ids.count(marker) == 1
    assert INSIGHT_END in tokenizer.decode(ids, skip_special_tokens=True)


def test_eos_ends_a_solution_and_is_special(tokenizer):
    ids = tokenizer(solution_text("Answer: 4"), add_special_tokens=False)["input_ids"]
    assert ids[-1] == tokenizer.eos_token_id
    assert tokenizer.pad_token_id not in (tokenizer.eos_token_id, tokenizer.bos_token_id)
    assert tokenizer.padding_side == "left"
