"""The simulator backend: a TEST DOUBLE of an inference engine, deterministic and fast.

It is not a model. It exists so the whole pipeline (coordinator, scorer, executor, accounting)
can be tested quickly and reproducibly, with the statistics Tandem depends on built in.
The conventions below are a contract the pipeline's tests may rely on.

Tokens
    One token is a run of whitespace followed by a run of non-whitespace (regex ``\\s*\\S+``),
    or trailing whitespace. No BOS token is added. Token counts in responses are exact under
    this rule. Generated text is built of such tokens, so concatenations re-tokenize the same.

Roles
    Chosen by the served model: ``--model sim-coordinator`` writes insights, ``--model
    sim-executor`` solves (and serves the scorer's prompt log-probs). A request header
    ``X-Sim-Role: coordinator|executor`` overrides it for that request.

The question and its answer
    The question is the text after the last ``Question:`` marker, up to the next blank line
    (without the marker: the whole prompt). Its answer is the value of the first arithmetic
    expression in it (numbers, ``+ - * /``, parentheses; ``x`` and the multiplication sign
    read as ``*``, the division sign as ``/``), evaluated exactly: an integer such as ``33``,
    or a reduced fraction such as ``7/2``.
    A question without an expression has no known answer: the executor answers ``unknown``.

Coordinator (insights)
    A question's complete insights are a fixed token sequence of length
    ``L = sim_insight_tokens * (1 ± sim_insight_jitter)`` (the spread depends on the question):
    four lines ``Goal: ...``, ``Planning: ...``, ``Retrieval: ...``, ``Action: ...`` (the Action
    line carries the computation), never a blank line, followed by the token
    ``<end_of_insights>`` (:data:`END_OF_INSIGHTS`) and then an end-of-sequence token
    (finish reason ``eos_token``; pass ``stop=["<end_of_insights>"]`` to get
    ``stop_sequence`` instead). The coordinator continues where the prompt leaves off: the
    insight tokens already in the prompt (from the first line that starts with ``Goal:`` to the
    end of the prompt) are counted and the sequence resumes after them. So ``continue(prompt +
    I[:k], n)`` returns ``I[k:k+n]``, and a question whose L is below the last level finishes
    early. The seed does not change insights (like greedy decoding).

Executor (solver)
    The insight amount ``k`` is the number of tokens from the first line starting with
    ``Goal:`` to ``<end_of_insights>``, the first blank line, or the end of the prompt (0 when
    there is no such line). The answer is right with probability
    ``p(k) = base + (max - base) * (1 - exp(-k / scale))`` (``sim_base_accuracy``,
    ``sim_max_accuracy``, ``sim_insight_scale``): it is right when ``u < p(k)``, with ``u`` a
    uniform number fixed by the question (and by the seed when sampling), so more insight never
    turns a right answer wrong. The text is ``sim_answer_tokens`` long and ends with
    ``The answer is \\boxed{N}.`` then an end-of-sequence token; a wrong ``N`` is the right one
    plus a non-zero offset. A short ``max_new_tokens`` cuts it (finish reason ``length``).

Prompt log-probs (prefill)
    Deterministic per prompt. Tokens outside the insight region: Gaussian around -4.0 (sd 1.2).
    Insight tokens: around ``-3.5 + 2.5 p(k) + 0.6 tanh(4 (p(k) - u))`` (sd 0.8), rising along
    the region. So perplexity falls as insight grows, and the level of the insight tokens
    carries a signal of whether the executor will be right: a classifier has something to learn.

Prefix reuse
    Modelled as the real backend does it (:mod:`services.engine.prefix_cache`): after each
    prompt, and at the end of each request (prompt and generated tokens but the last), the
    token ids are kept; a prompt's ``cached_tokens`` is what the best kept sequence serves of
    it (the rule of :meth:`services.engine.prefix_cache.PrefixCache.lookup`). Only the count
    is modelled: what the simulator generates never depends on it.

Timing and faults
    ``sim_ttft_s`` before the first token and ``1 / sim_tokens_per_s`` per token; faults (error
    status, stall, disconnect, slow stream) come from ``sim_faults`` or the ``X-Sim-Fault``
    header, see :mod:`services.engine.faults`.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from services.engine.backends.base import (
    Backend,
    OffsetToken,
    PromptToken,
    RequestContext,
    SamplingParams,
    Session,
    Token,
)
from services.engine.prefix_cache import PrefixCache
from services.engine.settings import EngineServerSettings

END_OF_INSIGHTS = "<end_of_insights>"
EOS_TEXT = "</s>"
EOS_ID = 2
VOCAB_SIZE = 32_000
ROLE_HEADER = "x-sim-role"
COORDINATOR, EXECUTOR = "coordinator", "executor"
SECTIONS = (("Goal:", 0.15), ("Planning:", 0.30), ("Retrieval:", 0.20), ("Action:", 0.35))

_TOKEN = re.compile(r"\s*\S+|\s+")
TIMES, DIVIDE = "\u00d7", "\u00f7"
_EXPRESSION = re.compile(rf"[-+*/x{TIMES}{DIVIDE}()\d.\s]*\d[-+*/x{TIMES}{DIVIDE}()\d.\s]*")
_FILLER = [
    "then",
    "check",
    "each",
    "intermediate",
    "value",
    "keep",
    "exact",
    "fractions",
    "track",
    "signs",
    "carefully",
    "the",
    "order",
    "of",
    "operations",
    "matters",
    "parentheses",
    "first",
    "multiply",
    "and",
    "divide",
    "before",
    "adding",
    "subtracting",
    "verify",
    "the",
    "partial",
    "result",
    "restate",
    "the",
    "quantity",
    "and",
    "confirm",
    "the",
    "final",
    "value",
]


def sim_tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _hash(*parts: object) -> int:
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _uniform(*parts: object) -> float:
    return _hash(*parts) / 2**64


def token_id(text: str) -> int:
    return 3 + _hash("tok", text) % (VOCAB_SIZE - 3)


# --- the question -------------------------------------------------------------------------


def question_of(prompt: str) -> str:
    marker = prompt.rfind("Question:")
    if marker < 0:
        return prompt.strip()
    rest = prompt[marker + len("Question:") :]
    return re.split(r"\n\s*\n", rest, maxsplit=1)[0].strip()


def _evaluate(expression: str) -> Fraction:
    """Exact value of ``+ - * /`` over numbers and parentheses (recursive descent, no eval)."""
    tokens: list[str] = re.findall(r"\d+(?:\.\d+)?|[-+*/()]", expression)
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def atom() -> Fraction:
        item = take()
        if item == "(":
            value = expr()
            if take() != ")":
                raise ValueError("unbalanced parentheses")
            return value
        if item == "-":
            return -atom()
        return Fraction(item)

    def term() -> Fraction:
        value = atom()
        while peek() in ("*", "/"):
            value = value * atom() if take() == "*" else value / atom()
        return value

    def expr() -> Fraction:
        value = term()
        while peek() in ("+", "-"):
            value = value + term() if take() == "+" else value - term()
        return value

    value = expr()
    if pos != len(tokens):
        raise ValueError("trailing tokens")
    return value


def find_expression(question: str) -> tuple[str, Fraction] | None:
    """The first run of the question that parses as arithmetic with an operator in it."""
    for match in _EXPRESSION.finditer(question):
        candidate = match.group().strip().rstrip(".").strip()
        normalized = candidate.replace(TIMES, "*").replace(DIVIDE, "/")
        normalized = re.sub(r"(?<=[\d)\s])x(?=[\d(\s])", "*", normalized)
        if not re.search(r"\d\s*[-+*/]\s*[-(\d]", normalized):
            continue
        try:
            return normalized, _evaluate(normalized)
        except (ValueError, ZeroDivisionError, IndexError):
            continue
    return None


def format_answer(value: Fraction) -> str:
    return (
        str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    )


def answer_of(prompt: str) -> str | None:
    """The right answer the simulator knows for a prompt (None: no arithmetic in it)."""
    found = find_expression(question_of(prompt))
    return format_answer(found[1]) if found else None


# --- insights -----------------------------------------------------------------------------


def insight_region(prompt: str) -> str:
    """Prompt text from the first line starting with ``Goal:`` (empty when there is none)."""
    match = re.search(r"(?m)^[ \t]*Goal:", prompt)
    return prompt[match.start() :].lstrip(" \t") if match else ""


def insight_tokens_in(prompt: str) -> int:
    """Insight amount as the executor sees it: up to the marker, a blank line or the end."""
    region = insight_region(prompt)
    region = region.split(END_OF_INSIGHTS, 1)[0]
    region = re.split(r"\n[ \t]*\n", region, maxsplit=1)[0]
    return len(sim_tokens(region.rstrip()))


def insight_length(question: str, base: int, jitter: float) -> int:
    spread = 1.0 + jitter * (2.0 * _uniform("len", question) - 1.0)
    return max(8, round(base * spread))


def _steps(expression: str) -> list[str]:
    """The computation, one operation at a time, innermost parentheses and precedence first."""
    steps: list[str] = []
    current = expression.replace(" ", "")
    for _ in range(32):
        inner = re.search(r"\(([^()]*)\)", current)
        target = inner.group(1) if inner else current
        op = re.search(r"(-?\d+(?:\.\d+)?(?:/\d+)?)([*/])(-?\d+(?:\.\d+)?)", target) or re.search(
            r"(-?\d+(?:\.\d+)?)([-+])(-?\d+(?:\.\d+)?)", target
        )
        if op is None:
            if inner is None:
                break
            current = current.replace(inner.group(0), inner.group(1), 1)
            continue
        value = format_answer(_evaluate(op.group(0)))
        steps.append(f"{op.group(1)} {op.group(2)} {op.group(3)} = {value}")
        new_target = target.replace(op.group(0), value, 1)
        current = current.replace(target, new_target, 1) if inner else new_target
    return steps


def insight_sequence(question: str, length: int) -> list[str]:
    """The complete insights of a question: ``length`` tokens, four sections, no blank line."""
    found = find_expression(question)
    expression = found[0] if found else None
    heads = {
        "Goal:": f"Goal: find the exact value of {expression}."
        if expression
        else "Goal: work out what the question asks for.",
        "Planning:": "Planning: split the expression into operations and apply them by precedence.",
        "Retrieval:": "Retrieval: multiplication and division bind tighter than addition.",
        "Action:": "Action: "
        + ("; ".join(_steps(expression)) if expression else "reason it out")
        + ".",
    }
    rng = random.Random(_hash("filler", question))
    tokens: list[str] = []
    for index, (name, share) in enumerate(SECTIONS):
        budget = length - len(tokens) if index == len(SECTIONS) - 1 else round(length * share)
        section = sim_tokens(("\n" if index else "") + heads[name])
        while len(section) < budget:
            section.append(" " + rng.choice(_FILLER))
        tokens.extend(section[:budget])
    return tokens[:length]


# --- the backend --------------------------------------------------------------------------


@dataclass(frozen=True)
class SimKnobs:
    tokens_per_s: float
    ttft_s: float
    insight_tokens: int
    insight_jitter: float
    answer_tokens: int
    base_accuracy: float
    max_accuracy: float
    insight_scale: float

    @classmethod
    def from_settings(cls, settings: EngineServerSettings) -> SimKnobs:
        return cls(
            tokens_per_s=settings.sim_tokens_per_s,
            ttft_s=settings.sim_ttft_s,
            insight_tokens=settings.sim_insight_tokens,
            insight_jitter=settings.sim_insight_jitter,
            answer_tokens=settings.sim_answer_tokens,
            base_accuracy=settings.sim_base_accuracy,
            max_accuracy=settings.sim_max_accuracy,
            insight_scale=settings.sim_insight_scale,
        )

    def accuracy(self, insight: int) -> float:
        grown = 1.0 - math.exp(-insight / self.insight_scale) if self.insight_scale > 0 else 1.0
        return self.base_accuracy + (self.max_accuracy - self.base_accuracy) * grown


class SimBackend(Backend):
    """The test double. See the module docstring for its contract."""

    name = "sim"
    dtype = "sim"
    vocab_size = VOCAB_SIZE

    def __init__(
        self, model: str, knobs: SimKnobs, *, model_id: str = "", prefix_cache_tokens: int = 0
    ) -> None:
        self.model_id = model_id or model
        self.knobs = knobs
        self.prefix_cache: PrefixCache[None] = PrefixCache(prefix_cache_tokens)
        self.default_role = COORDINATOR if "coordinator" in model else EXECUTOR

    def encode(self, text: str) -> list[int]:
        return [token_id(t) for t in sim_tokens(text)]

    def tokenize(self, text: str) -> list[OffsetToken]:
        return [
            OffsetToken(id=token_id(m.group()), text=m.group(), start=m.start(), stop=m.end())
            for m in _TOKEN.finditer(text)
        ]

    def role(self, context: RequestContext) -> str:
        role = {k.lower(): v for k, v in context.headers.items()}.get(ROLE_HEADER, "")
        return (
            role.strip().lower()
            if role.strip().lower() in (COORDINATOR, EXECUTOR)
            else (self.default_role)
        )

    async def start(
        self,
        ids: list[int],
        params: SamplingParams,
        *,
        prompt_logprobs: bool,
        context: RequestContext,
    ) -> Session:
        prompt_text = context.prompt_text
        texts = sim_tokens(prompt_text)
        question = question_of(prompt_text)
        role = self.role(context)
        if role == COORDINATOR:
            length = insight_length(question, self.knobs.insight_tokens, self.knobs.insight_jitter)
            sequence = [*insight_sequence(question, length), " " + END_OF_INSIGHTS]
            done = len(sim_tokens(insight_region(prompt_text)))
            output = sequence[done:]
        else:
            output = self._answer(question, prompt_text, params)
        logprobs = self._prefill(prompt_text, texts, question) if prompt_logprobs else None
        prompt = [
            PromptToken(
                id=token_id(text),
                text=text,
                logprob=None if logprobs is None or i == 0 else logprobs[i],
            )
            for i, text in enumerate(texts)
        ]
        hit = self.prefix_cache.lookup(ids)
        cached = hit.tokens if hit is not None else 0
        if cached < len(ids):
            self.prefix_cache.store(ids, None)
        await asyncio.sleep(self.knobs.ttft_s)
        session = SimSession(output, prompt, self.knobs, params, question)
        session.cached_tokens = cached
        session.keep = lambda emitted: self.prefix_cache.store([*ids, *emitted], None)
        return session

    def _u(self, question: str, params: SamplingParams) -> float:
        if params.sampling:
            return _uniform("u", question, params.seed)
        return _uniform("u", question)

    def _answer(self, question: str, prompt_text: str, params: SamplingParams) -> list[str]:
        found = find_expression(question)
        insight = insight_tokens_in(prompt_text)
        if found is None:
            answer = "unknown"
        else:
            right = self._u(question, params) < self.knobs.accuracy(insight)
            offset = (
                0
                if right
                else (1 + _hash("wrong", question) % 9) * (1 if _hash("sign", question) % 2 else -1)
            )
            answer = format_answer(found[1] + offset)
        closing = sim_tokens(f" The answer is \\boxed{{{answer}}}.")
        rng = random.Random(_hash("answer", question, params.seed if params.sampling else None))
        reasoning = sim_tokens("Let me work through this step by step.")
        while len(reasoning) + len(closing) < self.knobs.answer_tokens:
            reasoning.append(" " + rng.choice(_FILLER))
        return reasoning[: max(0, self.knobs.answer_tokens - len(closing))] + closing

    def _prefill(self, prompt_text: str, texts: list[str], question: str) -> list[float]:
        """Log-prob per prompt token: higher and rising inside the insight region (see above)."""
        region = insight_region(prompt_text)
        start = len(texts) - len(sim_tokens(region)) if region else len(texts)
        insight = insight_tokens_in(prompt_text)
        p = self.knobs.accuracy(insight)
        u = _uniform("u", question)
        level = -3.5 + 2.5 * p + 0.6 * math.tanh(4.0 * (p - u))
        values: list[float] = []
        for i, text in enumerate(texts):
            rng = random.Random(_hash("lp", i, text))
            if i >= start and i < start + insight:
                position = (i - start) / max(1, insight)
                value = rng.gauss(level + 0.5 * p * (position - 0.5), 0.8)
            else:
                value = rng.gauss(-4.0, 1.2)
            values.append(min(-0.01, value))
        return values


class SimSession(Session):
    def __init__(
        self,
        output: list[str],
        prompt: list[PromptToken],
        knobs: SimKnobs,
        params: SamplingParams,
        question: str,
    ) -> None:
        self.prompt = prompt
        self.seed = (params.seed if params.seed is not None else 0) if params.sampling else None
        self._output = output
        self._knobs = knobs
        self._question = question
        self._index = 0
        self._emitted: list[int] = []
        self.keep: Callable[[list[int]], None] | None = None

    async def step(self) -> Token:
        if self._knobs.tokens_per_s > 0:
            await asyncio.sleep(1.0 / self._knobs.tokens_per_s)
        index = self._index
        self._index += 1
        logprob = -0.05 - 1.5 * _uniform("gen", self._question, index)
        if index >= len(self._output):
            self._emitted.append(EOS_ID)
            return Token(id=EOS_ID, text=EOS_TEXT, logprob=logprob, special=True, eos=True)
        text = self._output[index]
        self._emitted.append(token_id(text))
        return Token(id=token_id(text), text=text, logprob=logprob)

    async def aclose(self) -> None:
        # As the real backend: the last token was never fed back, so it has no cached state.
        if self.keep is not None and len(self._emitted) > 1:
            self.keep(self._emitted[:-1])
