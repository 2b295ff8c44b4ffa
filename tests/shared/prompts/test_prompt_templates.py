"""Prompt templates: layout conventions, family formatting, the overhead bound."""

from __future__ import annotations

import re

import pytest

from shared.costs import prompt_token_bound
from shared.db.models import Domain
from shared.prompts import (
    END_OF_INSIGHTS,
    LAB_MODEL_PREFIX,
    PROMPT_VERSION,
    ModelFamily,
    end_of_insights,
    executor_prompt,
    family_of,
    insight_prompt,
    lab,
    prompt_version_of,
    template_overhead_tokens,
)

INSIGHTS = "Goal: the total.\nPlanning: add.\nRetrieval: none.\nAction: 2 + 3 = 5."
# Families prompted with the instruction templates (the lab pair has a layout of its own).
INSTRUCTED = [family for family in ModelFamily if family is not ModelFamily.LAB]


def test_family_by_model_id() -> None:
    assert family_of("smollm2-135m") is ModelFamily.CHATML
    assert family_of("HuggingFaceTB/SmolLM2-135M-Instruct") is ModelFamily.CHATML
    assert family_of("gemma3-270m") is ModelFamily.PLAIN
    assert family_of("sim-executor") is ModelFamily.PLAIN
    assert family_of(f"{LAB_MODEL_PREFIX}-coordinator") is ModelFamily.LAB


@pytest.mark.parametrize("family", INSTRUCTED)
@pytest.mark.parametrize("domain", list(Domain))
def test_insight_prompt_ends_with_the_insights_so_far(family: ModelFamily, domain: Domain) -> None:
    prompt = insight_prompt("What is 2 + 3?", INSIGHTS, domain, family)
    assert prompt.endswith(INSIGHTS)
    # The only line starting with Goal: is the insights' own (engines continue from there).
    assert len(re.findall(r"(?m)^\s*Goal:", prompt)) == 1
    assert END_OF_INSIGHTS in prompt  # the model is told how to finish
    assert prompt.rfind("Question: What is 2 + 3?") < prompt.index(INSIGHTS)


@pytest.mark.parametrize("family", INSTRUCTED)
def test_executor_prompt_layout(family: ModelFamily) -> None:
    prompt = executor_prompt("What is 2 + 3?", INSIGHTS + "\n", Domain.MATH, family)
    question = prompt[prompt.rindex("Question:") :]
    assert question.startswith("Question: What is 2 + 3?\n\n")
    assert f"Insights:\n{INSIGHTS}\n\n" in prompt  # insights end at a blank line
    assert "\\boxed" in prompt
    bare = executor_prompt("What is 2 + 3?", "", Domain.MATH, family)
    assert "Insights:" not in bare and "Goal:" not in bare


@pytest.mark.parametrize("domain", list(Domain))
def test_the_lab_pair_gets_the_layout_it_was_trained_on(domain: Domain) -> None:
    """Exactly the strings of :mod:`shared.prompts.lab`, whatever the domain: the coordinator
    continues its own raw text, and the executor sees the insights as cut at a budget."""
    family = ModelFamily.LAB
    assert insight_prompt("Buy 2 ka-po.", "", domain, family) == "Q: Buy 2 ka-po.\nI:"
    assert (
        insight_prompt("Buy 2 ka-po.", " Retrieval: ka-po", domain, family)
        == "Q: Buy 2 ka-po.\nI: Retrieval: ka-po"
    )
    assert (
        executor_prompt("Buy 2 ka-po.", " Retrieval: ka-po costs 3 ", domain, family)
        == "Q: Buy 2 ka-po.\nI: Retrieval: ka-po costs 3</I>\nS:"
    )
    assert executor_prompt("Buy 2 ka-po.", "", domain, family) == "Q: Buy 2 ka-po.\nI:</I>\nS:"
    assert end_of_insights(family) == lab.INSIGHT_END
    assert prompt_version_of(family) == lab.PROMPT_VERSION
    assert end_of_insights(ModelFamily.PLAIN) == END_OF_INSIGHTS
    assert prompt_version_of(ModelFamily.CHATML) == PROMPT_VERSION


def test_chatml_markup() -> None:
    prompt = executor_prompt("Q?", "", Domain.CODE, ModelFamily.CHATML)
    assert prompt.startswith("<|im_start|>user\n")
    assert prompt.endswith("<|im_start|>assistant\nSolution:")
    assert "```python" in prompt


@pytest.mark.parametrize("family", list(ModelFamily))
@pytest.mark.parametrize("domain", list(Domain))
def test_overhead_bound_covers_every_template(family: ModelFamily, domain: Domain) -> None:
    bound = template_overhead_tokens(domain)
    for prompt in (insight_prompt("", "", domain, family), executor_prompt("", "", domain, family)):
        assert len(prompt.encode("utf-8")) <= bound
    question = "x" * 300
    full = executor_prompt(question, "", domain, family)
    assert len(full.encode("utf-8")) <= prompt_token_bound(question, bound)
    assert PROMPT_VERSION
