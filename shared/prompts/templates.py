"""The templates themselves.

Layout conventions the engines rely on (the simulator's contract too): the question follows a
``Question:`` marker and ends at a blank line; the insights start on a line of their own with
``Goal:`` and contain no blank line; in the executor prompt they end at a blank line. The
coordinator's prompt ends where the insights so far end, so the model continues them.

Model families: ChatML instruct models (SmolLM2) get the instruction as a user turn and the
insights/solution as the start of the assistant turn; base models (Gemma 3 270M) and the
simulator get plain text with a one-shot example of the format. The project's own lab pair
(``models/lab``) was trained on one compact layout of its own (:mod:`shared.prompts.lab`) and
gets exactly that, whatever the domain.
"""

from __future__ import annotations

from enum import StrEnum

from shared.db.models import Domain
from shared.prompts import lab

PROMPT_VERSION = "v1"
END_OF_INSIGHTS = "<end_of_insights>"


class ModelFamily(StrEnum):
    PLAIN = "plain"  # base models and the simulator
    CHATML = "chatml"  # SmolLM2 and other ChatML instruct models
    LAB = "lab"  # the lab pair trained by `tandem lab` (model ids start with LAB_MODEL_PREFIX)


LAB_MODEL_PREFIX = "tandem-lab"


def family_of(model_id: str) -> ModelFamily:
    """Which chat format a configured model id needs."""
    lowered = model_id.lower()
    if lowered.startswith(LAB_MODEL_PREFIX):
        return ModelFamily.LAB
    if "smollm" in lowered or "chatml" in lowered or "qwen" in lowered:
        return ModelFamily.CHATML
    return ModelFamily.PLAIN


_TASK: dict[Domain, str] = {
    Domain.MATH: "Solve the math problem. End with 'The answer is \\boxed{N}.'",
    Domain.CODE: "Write a Python function that solves the task, in one ```python code block.",
    Domain.GENERAL: "Answer the question. End with 'The answer is: ...'.",
}

_INSIGHT_INSTRUCTION = (
    "Do not solve the problem. Write concise reasoning insights for a smaller model, four "
    "lines: Goal (what is asked), Planning (the steps), Retrieval (facts or formulas needed), "
    "Action (the first concrete computation). End with " + END_OF_INSIGHTS + "."
)

# One example, on a single line: a base model sees the format, and no line of the prompt starts
# with "Goal:" before the insights themselves do (where the engine's continuation begins).
_INSIGHT_EXAMPLE = (
    "Example. Question: A box holds 3 rows of 4 apples. How many apples? Insights: "
    "Goal: the number of apples. Planning: multiply rows by apples per row. "
    "Retrieval: total = rows x per row. Action: 3 x 4 = 12. " + END_OF_INSIGHTS + "\n\n"
)

# Upper bound, in tokens, of everything a template adds around the question and insights (the
# longest instruction + example + chat markup). Token counts are bounded by UTF-8 bytes.
TEMPLATE_OVERHEAD_TOKENS = 640


def template_overhead_tokens(domain: Domain | str | None = None) -> int:
    """What admission adds to the question's byte count for any template of this version."""
    del domain  # one bound covers every domain of this version (checked by a test)
    return TEMPLATE_OVERHEAD_TOKENS


def prompt_version_of(family: ModelFamily) -> str:
    """The version of the layout a family is prompted with (recorded with collected data)."""
    return lab.PROMPT_VERSION if family is ModelFamily.LAB else PROMPT_VERSION


def end_of_insights(family: ModelFamily) -> str:
    """The marker a coordinator of this family writes after its last insight (a stop string)."""
    return lab.INSIGHT_END if family is ModelFamily.LAB else END_OF_INSIGHTS


def _chatml(user: str, assistant_prefix: str) -> str:
    return f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n{assistant_prefix}"


def insight_prompt(question: str, insights: str, domain: Domain | str, family: ModelFamily) -> str:
    """The coordinator's prompt, ending with the insights written so far (to continue them)."""
    domain = Domain(domain)
    if family is ModelFamily.LAB:
        # The insights so far are the coordinator's raw continuations, so appending them as they
        # are gives the model back exactly the text it wrote.
        return lab.insight_prompt(question) + insights
    head = f"Task: {_TASK[domain]}\n{_INSIGHT_INSTRUCTION}\n\n"
    if family is ModelFamily.CHATML:
        return _chatml(f"{head}Question: {question.strip()}\n\n", insights)
    return f"{head}{_INSIGHT_EXAMPLE}Question: {question.strip()}\n\n{insights}"


def executor_prompt(question: str, insights: str, domain: Domain | str, family: ModelFamily) -> str:
    """The executor's prompt: question plus insights; scored by the scorer, answered by the
    executor (the same text, so the classifier sees exactly what the executor will see)."""
    domain = Domain(domain)
    if family is ModelFamily.LAB:
        return lab.executor_prompt(question, insights)
    body = f"Question: {question.strip()}\n\n"
    text = insights.strip()
    if text:
        body += f"Insights:\n{text}\n\n"
    if family is ModelFamily.CHATML:
        return _chatml(f"{_TASK[domain]}\n\n{body}", "Solution:")
    return f"{_TASK[domain]}\n\n{body}Solution:"
