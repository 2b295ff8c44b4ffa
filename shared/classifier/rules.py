"""Stop rules, as a classifier version declares them (docs/architecture.md, 'The method').

A version carries its level schedule (cumulative insight-token budgets) and one stop rule; the
scorer serves whichever rule the active version declares and ``tandem classifier evaluate``
replays the same :func:`decide_with` offline. Both rules are keyed by token budget, not by list
position, so a job's levels are matched to what the version was calibrated on.

- ``threshold`` (the paper's): stop at level t when the classifier's score reaches the
  threshold fitted for t's budget (:func:`shared.classifier.decision.decide`).
- ``lookahead`` (beyond the paper): from the features at level t, small logistic models predict
  P(the executor answers right at level k) for every k >= t; stop at t when no later level's
  expected gain P_k - P_t is worth its extra cost, i.e. P_k - P_t < λ · (c_k - c_t) for every
  k > t, with c the mean cost of stopping at each level relative to the coordinator alone
  (fitted on validation, like λ). The threshold rule looks only at "is t enough"; this one asks
  "will going on help this question enough", which the threshold rule cannot express.

The rule's parameters are plain JSON (ONNX metadata ``stop_rule``, the card, the
``classifier_models`` row); evaluating them needs no onnxruntime and no numpy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.classifier.decision import Decision, decide
from shared.db.models import TerminationReason

THRESHOLD = "threshold"
LOOKAHEAD = "lookahead"
KINDS = (THRESHOLD, LOOKAHEAD)


class RuleError(ValueError):
    """A stop rule's JSON does not describe a rule for its schedule."""


@dataclass(frozen=True)
class ThresholdRule:
    """The paper's rule: tau per token budget."""

    thresholds: Mapping[int, float]

    kind = THRESHOLD

    def threshold(self, budget: int) -> float:
        return self.thresholds[budget]


@dataclass(frozen=True)
class Logistic:
    """sigmoid(w · (x - mean) / scale + b) over the feature vector."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float

    def probability(self, vector: Sequence[float]) -> float:
        z = self.bias + sum(
            w * (x - m) / s
            for w, x, m, s in zip(self.weights, vector, self.mean, self.scale, strict=True)
        )
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))

    def to_json(self) -> dict[str, Any]:
        return {
            "mean": list(self.mean),
            "scale": list(self.scale),
            "weights": list(self.weights),
            "bias": self.bias,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Logistic:
        return cls(
            tuple(float(v) for v in data["mean"]),
            tuple(float(v) for v in data["scale"]),
            tuple(float(v) for v in data["weights"]),
            float(data["bias"]),
        )


@dataclass(frozen=True)
class LookaheadRule:
    """Cost-aware lookahead (beyond the paper): see the module docstring."""

    lam: float
    costs: Mapping[int, float]  # budget -> mean cost of stopping there / coordinator alone's
    models: Mapping[tuple[int, int], Logistic]  # (budget now, budget later) -> P(right later)

    kind = LOOKAHEAD

    def gains(self, budgets: Sequence[int], level: int, vector: Sequence[float]) -> list[float]:
        """P_k - P_t for each later level k of ``budgets``, predicted from the features at t."""
        now = budgets[level]
        here = self.models[(now, now)].probability(vector)
        return [self.models[(now, k)].probability(vector) - here for k in budgets[level + 1 :]]

    def worth_going_on(self, budgets: Sequence[int], level: int, vector: Sequence[float]) -> bool:
        now = budgets[level]
        return any(
            gain >= self.lam * (self.costs[later] - self.costs[now])
            for gain, later in zip(
                self.gains(budgets, level, vector), budgets[level + 1 :], strict=True
            )
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": LOOKAHEAD,
            "lambda": self.lam,
            "costs": {str(b): c for b, c in sorted(self.costs.items())},
            "models": [
                {"now": now, "later": later, **model.to_json()}
                for (now, later), model in sorted(self.models.items())
            ],
        }


StopRule = ThresholdRule | LookaheadRule


def positional(budgets: Sequence[int], thresholds: Sequence[float]) -> ThresholdRule:
    """Thresholds matched to ``budgets`` by position, the last one repeated past the list: how
    versions were matched to jobs before they carried a schedule."""
    if not thresholds:
        raise RuleError("a threshold rule needs at least one threshold")
    last = len(thresholds) - 1
    return ThresholdRule({b: float(thresholds[min(i, last)]) for i, b in enumerate(budgets)})


def rule_from_json(
    data: Mapping[str, Any] | None, levels: Sequence[int], thresholds: Sequence[float]
) -> StopRule:
    """The rule a version declares (none declared: the paper's thresholds), checked against the
    version's schedule so a broken file fails at load, not at a job's third level."""
    kind = (data or {}).get("kind", THRESHOLD)
    if kind == THRESHOLD:
        return positional(levels, thresholds)
    if kind != LOOKAHEAD:
        raise RuleError(f"unknown stop rule {kind!r}; known: {', '.join(KINDS)}")
    assert data is not None
    try:
        rule = LookaheadRule(
            lam=float(data["lambda"]),
            costs={int(b): float(c) for b, c in data["costs"].items()},
            models={
                (int(m["now"]), int(m["later"])): Logistic.from_json(m) for m in data["models"]
            },
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RuleError(f"lookahead rule is malformed: {exc!r}") from exc
    missing = [
        (now, later)
        for i, now in enumerate(levels)
        for later in levels[i:]
        if (now, later) not in rule.models
    ] + [(b, b) for b in levels if b not in rule.costs]
    if missing:
        raise RuleError(f"lookahead rule lacks models or costs for budgets {missing}")
    return rule


def calibrated_for(schedule: Sequence[int], requested: Sequence[int]) -> bool:
    """Whether a job's levels are ones the version was calibrated on: a prefix of its schedule
    (the features include the level's index, so the same budgets at other positions are not)."""
    return tuple(requested) == tuple(schedule[: len(requested)])


def decide_with(
    rule: StopRule,
    scores: Sequence[float],
    vector: Sequence[float],
    budgets: Sequence[int],
    *,
    insights_finished: bool,
    next_affordable: bool,
) -> Decision:
    """The stop decision at level t = ``len(scores) - 1`` of a job with levels ``budgets``;
    ``vector`` is the feature vector at t. Pure: the scorer and the offline replay call it."""
    level = len(scores) - 1
    last = len(budgets) - 1
    if isinstance(rule, ThresholdRule):
        threshold = rule.threshold(budgets[level])
    elif level < last and not rule.worth_going_on(budgets, level, vector):
        return Decision(True, TerminationReason.SUFFICIENT, level)
    else:
        threshold = math.inf  # never "sufficient" by score: the other stop reasons still apply
    return decide(
        scores,
        threshold,
        last_level=last,
        insights_finished=insights_finished,
        next_affordable=next_affordable,
    )
