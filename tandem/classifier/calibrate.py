"""Calibrate: fit a trained model's per-level thresholds on the validation questions.

The target accuracy defaults to the coordinator alone's accuracy on the same questions (the
paper's bar: as good as the large model, for less); ``last-level`` uses the executor with every
insight level instead, a number uses itself, and ``lam`` switches to accuracy - λ · relative
cost. The thresholds go into the ONNX metadata (what the scorer reads) and the model's card,
together with the settings, so ``evaluate`` tunes the cascade baseline by the same rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tandem.classifier.collected import CollectedQuestion, read_collected, validation_questions
from tandem.classifier.model_files import set_thresholds, update_card
from tandem.classifier.policies import CostModel, Spend, coordinator_alone, fixed_level
from tandem.classifier.scoring import score_questions
from tandem.classifier.thresholds import Calibration, Objective, fit_thresholds, level_table

COORDINATOR_TARGET = "coordinator"
LAST_LEVEL_TARGET = "last-level"


@dataclass(frozen=True)
class CalibrationSettings:
    target: str = COORDINATOR_TARGET  # "coordinator", "last-level" or an accuracy
    lam: float | None = None
    cost: str = "flops"  # "flops" (generated, the paper's), "total-flops" or "money"

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> CalibrationSettings:
        return cls(**data) if data else cls()


def has_coordinator_alone(questions: Sequence[CollectedQuestion]) -> bool:
    return bool(questions) and all(q.coordinator_alone is not None for q in questions)


def resolve_objective(
    questions: Sequence[CollectedQuestion],
    settings: CalibrationSettings,
    cost: Callable[[Spend], float],
) -> Objective:
    """The objective with its numbers filled in from ``questions``."""
    last = len(questions[0].levels) - 1
    if has_coordinator_alone(questions):
        reference = [coordinator_alone(q) for q in questions]
    else:
        reference = [fixed_level(q, last) for q in questions]
    reference_cost = float(np.mean([cost(o.spend) for o in reference]))
    if settings.lam is not None:
        return Objective(lam=settings.lam, reference_cost=reference_cost)
    if settings.target == COORDINATOR_TARGET:
        if not has_coordinator_alone(questions):
            raise ValueError(
                "the collected file has no coordinator-alone answers: collect them, or "
                f"calibrate with --target {LAST_LEVEL_TARGET} or a number"
            )
        target = float(np.mean([o.correct for o in reference]))
    elif settings.target == LAST_LEVEL_TARGET:
        target = float(np.mean([fixed_level(q, last).correct for q in questions]))
    else:
        try:
            target = float(settings.target)
        except ValueError as error:
            raise ValueError(
                f"--target must be {COORDINATOR_TARGET}, {LAST_LEVEL_TARGET} or a number"
            ) from error
    return Objective(target=target, reference_cost=reference_cost)


def calibrate_model(
    model: Path,
    collected: Path,
    settings: CalibrationSettings,
    *,
    per_level: int = 12,
    progress: bool = True,
) -> tuple[Calibration, Objective]:
    header, questions = read_collected(collected)
    validation = validation_questions(questions)
    if not validation:
        raise ValueError(f"{collected} has no validation questions to calibrate on")
    cost = CostModel.from_header(header).metric(settings.cost)
    objective = resolve_objective(validation, settings, cost)
    scores = score_questions(model, validation, header)
    table = level_table(validation, scores, cost)
    calibration = fit_thresholds(table, objective, per_level=per_level, progress=progress)
    set_thresholds(model, calibration.thresholds)
    update_card(
        model,
        thresholds=calibration.thresholds,
        calibration={
            "settings": asdict(settings),
            "objective": calibration.objective,
            "target_accuracy": objective.target,
            "target_reached": calibration.reached,
            "validation_questions": len(validation),
            "validation_accuracy": calibration.accuracy,
            "validation_cost": calibration.cost,
            "reference_cost": objective.reference_cost,
            "settings_tried": calibration.settings_tried,
        },
    )
    return calibration, objective
