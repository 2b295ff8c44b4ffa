"""Collect: run the serving path's steps for every question and level, and write what happened.

Per question, level by level, exactly as a ``tandem`` job would: the coordinator
extends its insights with :func:`shared.prompts.insight_prompt` to the level's cumulative
budget (extending, never regenerating); the scorer's engine returns the prompt log-probs of
:func:`shared.prompts.executor_prompt`; the executor answers that same prompt and the answer
the job would extract is graded. The coordinator also answers once without insights
(``llm_only``). Engines are reached through :func:`shared.engines.make_client`, so any
configured engine works: the local server, TGI, or an OpenAI-compatible one. The algorithm
and where collecting sits in the classifier's life: docs/architecture.md, 'The method',
'Classifier life cycle'.

The output (:mod:`tandem.classifier.collected`) is appended one question per line as each
finishes, so an interrupted run resumes where it stopped: questions already in the file are
skipped, and a file collected with other engines, prompts or levels is refused.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from shared.db.models import Role
from shared.engines import check_engine, make_client
from shared.engines.base import EngineClient, Generation
from shared.engines.config import EngineConfig, ScorerEngineSettings, engine_config
from shared.insights import extend_insights
from shared.prompts import executor_prompt as make_executor_prompt
from shared.prompts import family_of, prompt_version_of
from tandem.classifier.collected import (
    Answer,
    Call,
    CollectedFileError,
    CollectedQuestion,
    CollectHeader,
    EngineSpec,
    LevelResult,
    read_collected,
)
from tandem.classifier.questions import grade_output, prompt_domain
from tandem.datasets import TaskRecord

# The coordinator finished its insights by itself (as services.coordinator decides it).


@dataclass(frozen=True)
class Engines:
    coordinator: EngineClient
    executor: EngineClient
    scorer: EngineClient

    async def aclose(self) -> None:
        for client in (self.coordinator, self.executor, self.scorer):
            await client.aclose()


def engine_configs(
    coordinator_url: str | None = None,
    executor_url: str | None = None,
    scorer_url: str | None = None,
) -> dict[Role, EngineConfig]:
    """Each role's configured engine, with URLs overridden from the command line.

    The scorer runs the executor's model, so an overridden executor URL moves the scorer with
    it unless the scorer has an engine of its own (``--scorer-url`` or its settings).
    """
    coordinator = engine_config(Role.COORDINATOR)
    executor = engine_config(Role.EXECUTOR)
    scorer = engine_config(Role.SCORER)
    if coordinator_url:
        coordinator = replace(coordinator, url=coordinator_url.rstrip("/"))
    if executor_url:
        executor = replace(executor, url=executor_url.rstrip("/"))
    if scorer_url:
        scorer = replace(scorer, url=scorer_url.rstrip("/"))
    elif executor_url and not ScorerEngineSettings().url:
        scorer = replace(scorer, url=executor.url)
    return {Role.COORDINATOR: coordinator, Role.EXECUTOR: executor, Role.SCORER: scorer}


async def open_engines(configs: dict[Role, EngineConfig]) -> tuple[Engines, dict[Role, EngineSpec]]:
    """Clients for the three roles, each checked against its configured model first."""
    clients: dict[Role, EngineClient] = {}
    specs: dict[Role, EngineSpec] = {}
    try:
        for role, config in configs.items():
            client = clients[role] = make_client(config)
            info = await check_engine(client, check_model=config.check_model)
            specs[role] = EngineSpec(
                model=config.profile.name,
                served_model=info.model_id,
                engine=info.engine,
                url=config.url,
                parameters=config.profile.parameters,
                price_input_per_mtok=config.profile.price_input_per_mtok,
                price_output_per_mtok=config.profile.price_output_per_mtok,
            )
    except BaseException:
        for client in clients.values():
            await client.aclose()
        raise
    engines = Engines(clients[Role.COORDINATOR], clients[Role.EXECUTOR], clients[Role.SCORER])
    return engines, specs


def make_header(
    specs: dict[Role, EngineSpec], levels: Sequence[int], answer_tokens: int, source: str
) -> CollectHeader:
    return CollectHeader(
        prompt_version=prompt_version_of(family_of(specs[Role.COORDINATOR].model)),
        coordinator=specs[Role.COORDINATOR],
        executor=specs[Role.EXECUTOR],
        scorer=specs[Role.SCORER],
        levels=tuple(levels),
        answer_tokens=answer_tokens,
        source=source,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _call(generation: Generation) -> Call:
    return Call(generation.prompt_tokens, generation.generated_tokens, generation.cached_tokens)


def _mean_logprob(generation: Generation) -> float | None:
    values = [
        t.logprob
        for t in generation.token_logprobs
        if t.logprob is not None and math.isfinite(t.logprob)
    ]
    return sum(values) / len(values) if values else None


async def answer(
    client: EngineClient, record: TaskRecord, insights: str, answer_tokens: int
) -> Answer:
    """``client`` answers the executor prompt with ``insights``; graded like a job's answer."""
    prompt = make_executor_prompt(
        record.question, insights, prompt_domain(record.domain), family_of(client.profile.name)
    )
    generation = await client.generate(prompt, max_new_tokens=answer_tokens, details=True)
    # Grading may run code in a subprocess for seconds: keep the other questions moving.
    extracted, right = await asyncio.to_thread(grade_output, record, generation.text)
    return Answer(
        text=generation.text,
        answer=extracted,
        correct=right,
        call=_call(generation),
        mean_logprob=_mean_logprob(generation),
        finish_reason=generation.finish_reason,
    )


async def collect_question(
    engines: Engines,
    record: TaskRecord,
    levels: Sequence[int],
    answer_tokens: int,
    *,
    coordinator_alone: bool = True,
) -> CollectedQuestion:
    """Every level of one question, in order (each level extends the previous insights)."""
    domain = prompt_domain(record.domain)
    scorer_family = family_of(engines.scorer.profile.name)
    insights, insight_tokens, finished = "", 0, False
    results: list[LevelResult] = []
    for level, budget in enumerate(levels):
        extension: Call | None = None
        if level > 0 and not finished:
            extended = await extend_insights(
                engines.coordinator, record.question, insights, domain, budget - levels[level - 1]
            )
            generation, finished = extended.generation, extended.finished
            insights += extended.text
            insight_tokens += generation.generated_tokens
            extension = _call(generation)
        previous = results[-1] if results else None
        if previous is not None and extension is None:
            # Same insights as the level before (the coordinator had finished): same prompt.
            results.append(replace(previous, level=level, budget=budget, extension=None))
            continue
        scored = await engines.scorer.prompt_logprobs(
            make_executor_prompt(record.question, insights, domain, scorer_family)
        )
        executed = await answer(engines.executor, record, insights, answer_tokens)
        results.append(
            LevelResult(
                level=level,
                budget=budget,
                extension=extension,
                insight_tokens=insight_tokens,
                insight_chars=len(insights),
                finished=finished,
                scoring=_call(scored),
                logprobs=tuple(t.logprob for t in scored.prompt_logprobs),
                answer=executed,
            )
        )
    alone = (
        await answer(engines.coordinator, record, "", answer_tokens) if coordinator_alone else None
    )
    return CollectedQuestion(
        id=record.id,
        domain=record.domain,
        split=record.split.value,
        grader=record.grader,
        question=record.question,
        reference=record.reference,
        insights=insights,
        levels=tuple(results),
        coordinator_alone=alone,
    )


def prepare_output(out: Path, header: CollectHeader) -> set[str]:
    """Start ``out`` with ``header``, or check an existing file matches and return its ids."""
    if not out.exists() or out.stat().st_size == 0:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(header.to_json_line(), encoding="utf-8")
        return set()
    existing, questions = read_collected(out)
    differences = existing.differences(header)
    if differences:
        raise CollectedFileError(
            f"{out} was collected differently ({'; '.join(differences)}); "
            "write to another file or move this one away"
        )
    with out.open("rb+") as handle:  # drop a last line an interrupted run left unfinished
        data = handle.read()
        if data and not data.endswith(b"\n"):
            handle.truncate(data.rfind(b"\n") + 1)
    return {q.id for q in questions}


@dataclass(frozen=True)
class CollectSummary:
    out: Path
    questions: int  # in the file now
    collected: int  # by this run
    skipped: int  # already in the file


async def collect(
    engines: Engines,
    records: Sequence[TaskRecord],
    out: Path,
    header: CollectHeader,
    *,
    concurrency: int = 4,
    coordinator_alone: bool = True,
    progress: bool = True,
) -> CollectSummary:
    """Collect every record not yet in ``out``, appending each as soon as it is done."""
    from tqdm import tqdm

    done = prepare_output(out, header)
    todo = [r for r in records if r.id not in done]
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(record: TaskRecord) -> CollectedQuestion:
        async with gate:
            return await collect_question(
                engines,
                record,
                header.levels,
                header.answer_tokens,
                coordinator_alone=coordinator_alone,
            )

    right_first = right_last = written = 0
    tasks = [asyncio.ensure_future(one(r)) for r in todo]
    bar = tqdm(total=len(todo), desc="collect", unit="q", disable=not progress)
    try:
        with out.open("a", encoding="utf-8") as handle:
            for finished in asyncio.as_completed(tasks):
                question = await finished
                handle.write(question.to_json_line())
                handle.flush()
                written += 1
                right_first += question.levels[0].answer.correct
                right_last += question.levels[-1].answer.correct
                bar.update(1)
                bar.set_postfix(
                    acc_level0=f"{right_first / written:.2f}",
                    acc_last=f"{right_last / written:.2f}",
                )
    finally:
        bar.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return CollectSummary(out, len(done) + len(todo), len(todo), len(records) - len(todo))
