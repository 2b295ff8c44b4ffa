"""The lab measurement's cost and insight-need accounting, with two tiny untrained models."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer, LlamaForCausalLM

from tandem.datasets import Split, generate
from tandem.lab.configs import Architecture
from tandem.lab.corpus import TOKENIZER_DIR
from tandem.lab.evaluate import evaluate_domain, markdown
from tandem.lab.inference import LabModel


def tiny(tokenizer, hidden: int) -> LabModel:
    torch.manual_seed(hidden)
    config = Architecture(hidden, 1, 2, 2 * hidden).llama_config(
        len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    )
    return LabModel(LlamaForCausalLM(config).eval(), tokenizer)


@pytest.fixture(scope="module")
def measured(lab_data):
    tokenizer = AutoTokenizer.from_pretrained(str(lab_data / TOKENIZER_DIR))
    coordinator, executor = tiny(tokenizer, 32), tiny(tokenizer, 16)
    records = generate("shop", Split.TEST, 8, seed=2)
    return records, evaluate_domain(coordinator, executor, records, [7]), coordinator


def test_rows_count_prompt_and_generated_flops(measured):
    records, result, coordinator = measured
    rows = {row["setting"]: row for row in result["rows"]}
    alone = rows["coordinator alone"]
    prompt = sum(
        len(coordinator.tokenizer(f"Q: {r.question}\nI:</I>\nS:")["input_ids"]) for r in records
    )
    generated = alone["coordinator_tokens"] * len(records)
    expected = 2 * coordinator.parameters * (prompt + generated) / len(records) / 1e6
    assert alone["total_mflops"] == pytest.approx(expected, rel=1e-3)
    level0 = rows["executor alone"]
    assert level0["coordinator_tokens"] == 0 and level0["total_mflops"] > level0["mflops"] > 0
    # With insights the coordinator reads the question once: more than the executor alone.
    helped = rows["executor + coordinator insights <= 7 tokens"]
    assert helped["total_mflops"] - helped["mflops"] > level0["total_mflops"] - level0["mflops"]


def test_accuracy_is_broken_down_by_insight_need(measured):
    records, result, *_ = measured
    needs = {str(r.meta["missing_facts"]) for r in records}
    for row in result["rows"]:
        assert set(row["by_need"]) == needs
        assert all(0.0 <= value <= 1.0 for value in row["by_need"].values())
    text = markdown(
        {
            "pair": "v2",
            "prompt_version": "lab-v1",
            "parameters": {"coordinator": 1, "executor": 1},
            "domains": {"shop": result},
        }
    )
    assert "left out |" in text and "| total MFLOPs |" in text
    # The title names the pair measured, not only the prompt layout both pairs share.
    assert text.splitlines()[0] == "# Lab pair v2 on the test split (prompts lab-v1)"
