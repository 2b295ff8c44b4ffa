"""Versioned prompt templates (docs/architecture.md, 'The method'): the coordinator's insight
prompt and the executor's prompt, per domain, with chat formatting per model family.

The version is recorded on every job (``jobs.prompt_version``), and
:data:`TEMPLATE_OVERHEAD_TOKENS` bounds what a template adds to the question so admission can
reserve a job's worst case (:func:`shared.costs.worst_case_cost`).
"""

from shared.prompts.templates import (
    END_OF_INSIGHTS,
    LAB_MODEL_PREFIX,
    PROMPT_VERSION,
    TEMPLATE_OVERHEAD_TOKENS,
    ModelFamily,
    end_of_insights,
    executor_prompt,
    family_of,
    insight_prompt,
    prompt_version_of,
    template_overhead_tokens,
)

__all__ = [
    "END_OF_INSIGHTS",
    "LAB_MODEL_PREFIX",
    "PROMPT_VERSION",
    "TEMPLATE_OVERHEAD_TOKENS",
    "ModelFamily",
    "end_of_insights",
    "executor_prompt",
    "family_of",
    "insight_prompt",
    "prompt_version_of",
    "template_overhead_tokens",
]
