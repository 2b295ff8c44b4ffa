"""The collected file: what ``tandem classifier collect`` writes and every later step reads.

JSONL. The first line is the header (``"kind": "header"``): the engines (configured model,
the model the engine reported, parameters and prices, URL), the prompt version, the level
schedule and the answer budget. Every further line is one question (``"kind": "question"``)
with, per level of the schedule:

- ``extension``: the coordinator call that extended the insights to this level (prompt and
  generated tokens; null at level 0 and after the coordinator finished), ``insight_tokens``,
  ``insight_chars`` (the question's ``insights`` cut there are this level's insights) and
  ``finished`` (the insights were complete at this level);
- ``scoring``: the scorer's forward pass over the executor prompt, and its prompt ``logprobs``
  (features are computed from them when read, by the feature set a model names
  (:mod:`shared.features`), so a file outlives a change of the feature list);
- ``answer``: the executor's answer at this level: text, extracted answer, ``correct``, token
  counts and its mean generated-token log-prob (the cascade baseline's confidence);

and ``coordinator_alone``: the coordinator answering the executor prompt without insights (the
``llm_only`` policy). Token counts are the engines' own. Levels past the one where the insights
finished repeat that level's prompt, so they reuse its answer instead of asking again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from shared.engines.base import ModelProfile
from shared.features import PROMPT_STATS, FeatureSet, InsightSpan

FORMAT = "tandem-classifier-collect/1"
# Tokens from the end-of-insights marker to the end of the executor prompt, per prompt layout
# whose insight span the features can find in a collected file: the lab layout's ``</I>\nS:``
# is four tokens of its tokenizer (a test checks this against the served engine, which finds
# the marker by its text).
SUFFIX_TOKENS = {"lab-v1": 4}
HEADER, QUESTION = "header", "question"


class CollectedFileError(ValueError):
    """A collected file that is missing its header or does not match this run."""


@dataclass(frozen=True)
class EngineSpec:
    """One role's engine as collect used it."""

    model: str  # the configured model id (TANDEM_<ROLE>_ENGINE_MODEL_ID)
    served_model: str  # what the engine's /info reported
    engine: str
    url: str
    parameters: int
    price_input_per_mtok: Decimal
    price_output_per_mtok: Decimal

    @property
    def profile(self) -> ModelProfile:
        return ModelProfile(
            self.model, self.parameters, self.price_input_per_mtok, self.price_output_per_mtok
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "served_model": self.served_model,
            "engine": self.engine,
            "url": self.url,
            "parameters": self.parameters,
            "price_input_per_mtok": str(self.price_input_per_mtok),
            "price_output_per_mtok": str(self.price_output_per_mtok),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EngineSpec:
        return cls(
            model=str(data["model"]),
            served_model=str(data.get("served_model", data["model"])),
            engine=str(data.get("engine", "")),
            url=str(data.get("url", "")),
            parameters=int(data["parameters"]),
            price_input_per_mtok=Decimal(str(data.get("price_input_per_mtok", "0"))),
            price_output_per_mtok=Decimal(str(data.get("price_output_per_mtok", "0"))),
        )


@dataclass(frozen=True)
class CollectHeader:
    prompt_version: str
    coordinator: EngineSpec
    executor: EngineSpec
    scorer: EngineSpec
    levels: tuple[int, ...]
    answer_tokens: int
    source: str
    created_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": HEADER,
            "format": FORMAT,
            "prompt_version": self.prompt_version,
            "coordinator": self.coordinator.to_dict(),
            "executor": self.executor.to_dict(),
            "scorer": self.scorer.to_dict(),
            "levels": list(self.levels),
            "answer_tokens": self.answer_tokens,
            "source": self.source,
            "created_at": self.created_at,
        }

    def to_json_line(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CollectHeader:
        if data.get("format") != FORMAT:
            raise CollectedFileError(f"unknown collected-file format {data.get('format')!r}")
        return cls(
            prompt_version=str(data["prompt_version"]),
            coordinator=EngineSpec.from_dict(data["coordinator"]),
            executor=EngineSpec.from_dict(data["executor"]),
            scorer=EngineSpec.from_dict(data["scorer"]),
            levels=tuple(int(b) for b in data["levels"]),
            answer_tokens=int(data["answer_tokens"]),
            source=str(data.get("source", "")),
            created_at=str(data.get("created_at", "")),
        )

    def differences(self, other: CollectHeader) -> list[str]:
        """What makes rows collected under ``other`` incomparable with rows under this one."""
        out = []
        for name in ("prompt_version", "levels", "answer_tokens"):
            if getattr(self, name) != getattr(other, name):
                out.append(f"{name}: {getattr(self, name)} vs {getattr(other, name)}")
        for role in ("coordinator", "executor", "scorer"):
            mine, theirs = getattr(self, role), getattr(other, role)
            if (mine.model, mine.served_model) != (theirs.model, theirs.served_model):
                out.append(f"{role} model: {mine.model} vs {theirs.model}")
        return out


@dataclass(frozen=True)
class Call:
    """Token counts of one model call, as the engine reported them."""

    prompt_tokens: int
    generated_tokens: int
    # Of the prompt tokens, those the engine served from its prefix cache (priced as cached).
    cached_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = {"prompt_tokens": self.prompt_tokens, "generated_tokens": self.generated_tokens}
        if self.cached_tokens:  # absent: none (files collected without a prefix cache)
            data["cached_tokens"] = self.cached_tokens
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Call:
        return cls(
            int(data["prompt_tokens"]),
            int(data["generated_tokens"]),
            int(data.get("cached_tokens", 0)),
        )


@dataclass(frozen=True)
class Answer:
    text: str
    answer: str | None
    correct: bool
    call: Call
    mean_logprob: float | None  # mean log-prob of the generated tokens: the model's confidence
    finish_reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "answer": self.answer,
            "correct": self.correct,
            **self.call.to_dict(),
            "mean_logprob": self.mean_logprob,
            "finish_reason": self.finish_reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Answer:
        mean = data.get("mean_logprob")
        return cls(
            text=str(data.get("text", "")),
            answer=data.get("answer"),
            correct=bool(data["correct"]),
            call=Call.from_dict(data),
            mean_logprob=None if mean is None else float(mean),
            finish_reason=str(data.get("finish_reason", "")),
        )


@dataclass(frozen=True)
class LevelResult:
    level: int
    budget: int
    extension: Call | None
    insight_tokens: int
    insight_chars: int
    finished: bool
    scoring: Call
    logprobs: tuple[float | None, ...]
    answer: Answer

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "budget": self.budget,
            "extension": None if self.extension is None else self.extension.to_dict(),
            "insight_tokens": self.insight_tokens,
            "insight_chars": self.insight_chars,
            "finished": self.finished,
            "scoring": self.scoring.to_dict(),
            "logprobs": [None if v is None else round(v, 5) for v in self.logprobs],
            "answer": self.answer.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LevelResult:
        extension = data.get("extension")
        return cls(
            level=int(data["level"]),
            budget=int(data["budget"]),
            extension=None if extension is None else Call.from_dict(extension),
            insight_tokens=int(data["insight_tokens"]),
            insight_chars=int(data["insight_chars"]),
            finished=bool(data["finished"]),
            scoring=Call.from_dict(data["scoring"]),
            logprobs=tuple(None if v is None else float(v) for v in data["logprobs"]),
            answer=Answer.from_dict(data["answer"]),
        )


@dataclass(frozen=True)
class CollectedQuestion:
    id: str
    domain: str
    split: str
    grader: str
    question: str
    reference: str
    insights: str
    levels: tuple[LevelResult, ...]
    coordinator_alone: Answer | None

    @property
    def reachable(self) -> int:
        """How many levels the serving path can score: up to the one where insights finished."""
        for result in self.levels:
            if result.finished:
                return result.level + 1
        return len(self.levels)

    def insights_at(self, level: int) -> str:
        return self.insights[: self.levels[level].insight_chars]

    def span_at(self, level: int, suffix_tokens: int) -> InsightSpan:
        """Where level ``level``'s insights lie in its prompt: they start where level 0's
        prompt has its end marker (level 0 has no insights) and end at this prompt's marker,
        ``suffix_tokens`` from its end. The scorer finds the same span by the marker's text."""
        start = len(self.levels[0].logprobs) - suffix_tokens
        return InsightSpan(start, len(self.levels[level].logprobs) - suffix_tokens)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": QUESTION,
            "id": self.id,
            "domain": self.domain,
            "split": self.split,
            "grader": self.grader,
            "question": self.question,
            "reference": self.reference,
            "insights": self.insights,
            "levels": [result.to_dict() for result in self.levels],
            "coordinator_alone": None
            if self.coordinator_alone is None
            else self.coordinator_alone.to_dict(),
        }

    def to_json_line(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CollectedQuestion:
        alone = data.get("coordinator_alone")
        return cls(
            id=str(data["id"]),
            domain=str(data["domain"]),
            split=str(data["split"]),
            grader=str(data["grader"]),
            question=str(data["question"]),
            reference=str(data["reference"]),
            insights=str(data.get("insights", "")),
            levels=tuple(LevelResult.from_dict(level) for level in data["levels"]),
            coordinator_alone=None if alone is None else Answer.from_dict(alone),
        )


@dataclass(frozen=True)
class Featurizer:
    """A feature set applied to collected questions, as the scorer applies it to prompts."""

    feature_set: FeatureSet = PROMPT_STATS
    suffix_tokens: int = 0  # the layout's, for a set that reads the insight span

    @classmethod
    def of(cls, feature_set: FeatureSet, header: CollectHeader) -> Featurizer:
        """``feature_set`` on files collected like ``header``, or ValueError when their
        prompts do not tell where the insights lie."""
        if not feature_set.uses_span:
            return cls(feature_set)
        suffix = SUFFIX_TOKENS.get(header.prompt_version)
        if suffix is None:
            raise ValueError(
                f"the {feature_set.name} features need a prompt layout whose insight span is "
                f"known ({', '.join(SUFFIX_TOKENS)}), not {header.prompt_version}"
            )
        if not header.levels or header.levels[0] != 0:
            raise ValueError(
                f"the {feature_set.name} features need a schedule that starts at 0 insight "
                f"tokens (the insights begin where level 0's prompt has its end marker), not "
                f"{list(header.levels)}"
            )
        return cls(feature_set, suffix)

    def vector(self, question: CollectedQuestion, level: int) -> list[float]:
        result = question.levels[level]
        span = question.span_at(level, self.suffix_tokens) if self.feature_set.uses_span else None
        return self.feature_set.vector(result.logprobs, result.level, result.insight_tokens, span)

    def vectors(self, question: CollectedQuestion) -> list[list[float]]:
        """The feature vector at every level."""
        return [self.vector(question, level) for level in range(len(question.levels))]


def _lines(path: Path) -> Iterable[dict[str, Any]]:
    """Parsed lines; a last line cut short by an interrupted run is skipped, not an error."""
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError as error:
            if index == len(lines) - 1:  # no newline after it: the write never finished
                return
            raise CollectedFileError(f"{path}:{index + 1}: not JSON ({error.msg})") from error


def read_collected(path: Path) -> tuple[CollectHeader, list[CollectedQuestion]]:
    header: CollectHeader | None = None
    questions: list[CollectedQuestion] = []
    for data in _lines(path):
        if data.get("kind") == HEADER:
            if header is not None:
                raise CollectedFileError(f"{path} has more than one header")
            header = CollectHeader.from_dict(data)
        elif data.get("kind") == QUESTION:
            questions.append(CollectedQuestion.from_dict(data))
    if header is None:
        raise CollectedFileError(f"{path} has no header line; was it written by collect?")
    return header, questions


def of_split(questions: Sequence[CollectedQuestion], split: str) -> list[CollectedQuestion]:
    return [q for q in questions if q.split == split]


def _hash_bucket(question_id: str) -> int:
    return int(hashlib.sha256(question_id.encode()).hexdigest()[:8], 16) % 100


def fitting_split(
    question: CollectedQuestion, has_validation: bool, validation_percent: int = 20
) -> str | None:
    """``train`` or ``validation`` for fitting (None for test questions, never fitted on).

    Split by question: the file's own ``validation`` questions, or, when it has none,
    ``validation_percent`` of its train questions chosen by a hash of the id.
    """
    if question.split == "test":
        return None
    if has_validation:
        return "validation" if question.split == "validation" else "train"
    return "validation" if _hash_bucket(question.id) < validation_percent else "train"


def validation_questions(
    questions: Sequence[CollectedQuestion], validation_percent: int = 20
) -> list[CollectedQuestion]:
    """The questions thresholds are fitted on: the same ones :func:`training_rows` held out."""
    has_validation = any(q.split == "validation" for q in questions)
    return [
        q for q in questions if fitting_split(q, has_validation, validation_percent) == "validation"
    ]


def training_rows(
    questions: Sequence[CollectedQuestion],
    validation_percent: int = 20,
    featurizer: Featurizer = Featurizer(),
) -> list[dict[str, Any]]:
    """Rows for :func:`tandem.classifier.train.train`, one per (question, reachable level)."""
    has_validation = any(q.split == "validation" for q in questions)
    rows: list[dict[str, Any]] = []
    for question in questions:
        split = fitting_split(question, has_validation, validation_percent)
        if split is None:
            continue
        for result in question.levels[: question.reachable]:
            rows.append(
                {
                    "question_id": question.id,
                    "level": result.level,
                    "features": featurizer.vector(question, result.level),
                    "label": int(result.answer.correct),
                    "split": split,
                }
            )
    return rows
