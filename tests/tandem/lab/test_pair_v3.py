"""Pair v3's committed executor: what its training adds to pair v2's, measured on the weights.

v3's executor is v2's, trained besides on the loss of insights that hold every fact a question
leaves out (``tandem.lab.corpus``). What that should buy, and what the cross-domain stop
decision reads: the end marker ``</I>`` after insights that still lack a fact is improbable to
it, and after insights that hold them all it is not, in both domains. Measured on 60 fixed test
questions per domain: lacking about -21 nats (the most probable -15), sufficient about -1.4
(the least probable -1.5); v2's executor puts both near -20, whichever it is.
"""

from __future__ import annotations

import statistics

import pytest

from shared.prompts.lab import INSIGHT_END, executor_prompt
from tandem.datasets import Split, generate
from tandem.lab.configs import SEED, V2, V3, Role
from tandem.lab.corpus import PLAN_MARK
from tandem.lab.inference import LabModel
from tandem.lab.pipeline import read_manifest

QUESTIONS = 60


def _end_marker_logprobs(model: LabModel, domain: str) -> dict[str, list[float]]:
    """The end marker's log-prob after insights that lack a fact (none, or all but the last
    left-out fact) and after insights that hold every one (none needed, or the facts)."""
    prompts: list[tuple[str, str]] = []
    for record in generate(domain, Split.TEST, QUESTIONS, seed=SEED):
        facts = record.insights.split(PLAN_MARK, 1)[0].strip()
        if not facts:
            prompts.append(("sufficient", executor_prompt(record.question)))
            continue
        prompts.append(("lacking", executor_prompt(record.question)))
        known = facts.rstrip(".").split("; ")
        if len(known) > 1:
            prompts.append(("lacking", executor_prompt(record.question, "; ".join(known[:-1]))))
        prompts.append(("sufficient", executor_prompt(record.question, facts)))
    end = model.token_id(INSIGHT_END)
    found: dict[str, list[float]] = {"lacking": [], "sufficient": []}
    for (kind, prompt), logprobs in zip(
        prompts, model.prompt_logprobs([p for _, p in prompts]), strict=True
    ):
        ids = model.tokenizer(prompt)["input_ids"]
        value = logprobs[max(i for i, t in enumerate(ids) if t == end)]
        assert value is not None
        found[kind].append(value)
    return found


@pytest.fixture(scope="module")
def executors() -> dict[str, LabModel]:
    return {pair.name: LabModel.load(pair.models_dir / Role.EXECUTOR.value) for pair in (V2, V3)}


def test_manifest_describes_the_committed_executor(executors):
    manifest = read_manifest(V3.models_dir / Role.EXECUTOR.value)
    assert manifest["pair"] == "v3" and manifest["role"] == "executor"
    assert manifest["plan"] == V3.plans[Role.EXECUTOR].to_dict()
    assert manifest["parameters"] == executors["v3"].parameters
    assert manifest["parameters"] == read_manifest(V2.models_dir / "executor")["parameters"]


@pytest.mark.parametrize("domain", V3.domains)
def test_v3_executor_finds_the_end_marker_improbable_while_a_fact_is_missing(executors, domain):
    found = _end_marker_logprobs(executors["v3"], domain)
    assert len(found["lacking"]) >= 20 and len(found["sufficient"]) >= 20
    assert max(found["lacking"]) < -8.0
    assert min(found["sufficient"]) > -4.0


@pytest.mark.parametrize("domain", V2.domains)
def test_v2_executor_does_not_tell_them_apart(executors, domain):
    found = _end_marker_logprobs(executors["v2"], domain)
    gap = statistics.median(found["sufficient"]) - statistics.median(found["lacking"])
    assert abs(gap) < 3.0
