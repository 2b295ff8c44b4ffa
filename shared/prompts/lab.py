"""The plain-text prompt formats of the lab model pair (`models/lab`, `tandem lab`).

Both models read and write one layout, so any engine can drive them with plain strings::

    Q: <question>
    I: <insights></I>
    S: <worked solution> Answer: <value></s>

- **Insight prompt** (coordinator): ``Q: <question>\\nI:``. The coordinator continues with
  `` Goal: ... Plan: ... Retrieval: ... Action: ...`` and then writes the end-of-insights
  marker ``</I>`` (one token). Stop generation on that marker (TGI: ``stop=["</I>"]``) or cut
  it at a token budget.
- **Executor prompt** (either model): ``Q: <question>\\nI: <insight prefix></I>\\nS:``, with
  whatever prefix of the insights is available (possibly empty: ``I:</I>``). The model writes
  `` <solution> Answer: <value>`` and then ``</s>``. The coordinator given an empty prefix
  solves the question on its own (that is "coordinator alone").
- The tokenizer adds ``<s>`` in front of every encoded prompt; generation ends at ``</s>``.
"""

from __future__ import annotations

INSIGHT_END = "</I>"
BOS = "<s>"
EOS = "</s>"
PAD = "<pad>"
SPECIAL_TOKENS = (PAD, BOS, EOS)
# Version of these formats, recorded with every model and measurement.
PROMPT_VERSION = "lab-v1"


def insight_prompt(question: str) -> str:
    """What the coordinator continues to write insights."""
    return f"Q: {question.strip()}\nI:"


def insights_text(insights: str) -> str:
    """Insights as they follow ``I:`` (a leading space, no trailing space)."""
    stripped = insights.strip()
    return f" {stripped}" if stripped else ""


def executor_prompt(question: str, insights: str = "") -> str:
    """What a model continues to write the solution, given a (possibly empty) insight prefix."""
    return f"{insight_prompt(question)}{insights_text(insights)}{INSIGHT_END}\nS:"


def solution_text(solution: str) -> str:
    """The completion after an executor prompt, end of sequence included."""
    return f" {solution.strip()}{EOS}"
