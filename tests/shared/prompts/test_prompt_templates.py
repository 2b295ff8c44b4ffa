"""Prompt templates: layout conventions, family formatting, the overhead bound."""

from __future__ import annotations

import re

import pytest

from shared.costs import prompt_token_bound
from shared.db.models import Domain
from shared.prompts import (
    END_OF_INSIGHTS,
    PROMPT_VERSION,
    ModelFamily,
    executor_prompt,
    family_of,
    insight_prompt,
    template_overhead_tokens,
)

INSIGHTS = "Goal: the total.\nPlanning: add.\nRetrieval: none.\nAction: 2 + 3 = 5."


def test_family_by_model_id() -> None:
    assert family_of("smollm2-135m") is ModelFamily.CHATML
    assert family_of("HuggingFaceTB/SmolLM2-135M-Instruct") is ModelFamily.CHATML
    assert family_of("gemma3-270m") is ModelFamily.PLAIN
    assert family_of("sim-executor") is ModelFamily.PLAIN


@pytest.mark.parametrize("family", list(ModelFamily))
@pytest.mark.parametrize("domain", list(Domain))
def test_insight_prompt_ends_with_the_insights_so_far(family: ModelFamily, domain: Domain) -> None:
    prompt = insight_prompt("What is 2 + 3?", INSIGHTS, domain, family)
    assert prompt.endswith(INSIGHTS)
    # The only line starting with Goal: is the insights' own (engines continue from there).
    assert len(re.findall(r"(?m)^\s*Goal:", prompt)) == 1
    assert END_OF_INSIGHTS in prompt  # the model is told how to finish
    assert prompt.rfind("Question: What is 2 + 3?") < prompt.index(INSIGHTS)


@pytest.mark.parametrize("family", list(ModelFamily))
def test_executor_prompt_layout(family: ModelFamily) -> None:
    prompt = executor_prompt("What is 2 + 3?", INSIGHTS + "\n", Domain.MATH, family)
    question = prompt[prompt.rindex("Question:") :]
    assert question.startswith("Question: What is 2 + 3?\n\n")
    assert f"Insights:\n{INSIGHTS}\n\n" in prompt  # insights end at a blank line
    assert "\\boxed" in prompt
    bare = executor_prompt("What is 2 + 3?", "", Domain.MATH, family)
    assert "Insights:" not in bare and "Goal:" not in bare


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
