"""The real-model backend: a causal LM from transformers on the CPU, one worker thread.

Every torch call runs on a single worker thread, so the event loop never blocks and torch's
intra-op threads are not oversubscribed. A request's prefill and each of its decode steps are
separate jobs on that thread, so concurrent requests interleave token by token (first come,
first served) instead of waiting for each other to finish.

Prompt log-probs (TGI's ``decoder_input_details``): the decoder's hidden states are computed
once, then projected to the vocabulary a chunk of positions at a time, with ``log_softmax`` per
chunk and only the log-prob of each actual next token kept. Gemma's 262k-token vocabulary
would otherwise need a (prompt length x 262k) float matrix.

Prefix reuse (:mod:`services.engine.prefix_cache`): after a prefill, and when a request ends,
the KV cache is kept with the next-token logits and the log-probs known so far; a prompt that
shares a kept sequence's beginning copies that cache (cut back to the shared part when needed)
and runs the model over the other tokens only. The
results equal a full prefill up to float rounding (the same tokens, attended in two passes).
"""

from __future__ import annotations

import asyncio
import copy
import os
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.engine.backends.base import (
    Backend,
    OffsetToken,
    PromptToken,
    RequestContext,
    SamplingParams,
    Session,
    Token,
)
from services.engine.backends.model_store import LoadReport, load_model
from services.engine.prefix_cache import PrefixCache

LOGITS_CHUNK_BYTES = 64 * 1024 * 1024
DETOKENIZE_CONTEXT = 5  # prompt tokens kept as decode context (spaces, multi-byte characters)


@dataclass(frozen=True)
class KVState:
    """The model's state after a token sequence: enough to continue it without recomputing."""

    cache: Any  # transformers Cache (never handed out: a session gets a copy)
    next_logits: Any
    logprobs: list[float] | None  # of each token after the first, when they were computed


@dataclass
class Prefilled:
    cache: Any
    next_logits: Any
    logprobs: list[float]
    cached_tokens: int


class GGUFBackend(Backend):
    name = "gguf"

    def __init__(
        self,
        model: str,
        *,
        cache_dir: Path,
        dtype: str = "auto",
        threads: int = 0,
        model_id: str = "",
        logprob_chunk_tokens: int = 0,
        prefix_cache_tokens: int = 0,
    ) -> None:
        import torch

        torch.set_num_threads(threads or os.cpu_count() or 1)
        self.model_id = model_id or model
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine-torch")
        self.prefix_cache: PrefixCache[KVState] = PrefixCache(prefix_cache_tokens)
        self.model, self.tokenizer, self.load_report = load_model(model, cache_dir, dtype)
        self.dtype = str(self.model.dtype).removeprefix("torch.")
        self._head = self.model.get_output_embeddings()
        self._decoder = self.model.get_decoder()
        self.vocab_size = int(self._head.weight.shape[0])
        self._softcap = getattr(self.model.config, "final_logit_softcapping", None)
        self._chunk = logprob_chunk_tokens or max(1, LOGITS_CHUNK_BYTES // (4 * self.vocab_size))
        self.eos_ids = self._eos_ids()
        self.special_ids = set(self.tokenizer.all_special_ids)

    @property
    def report(self) -> LoadReport:
        return self.load_report

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        for source in (
            self.tokenizer.eos_token_id,
            getattr(self.model.generation_config, "eos_token_id", None),
            getattr(self.model.config, "eos_token_id", None),
        ):
            if isinstance(source, int):
                ids.add(source)
            elif isinstance(source, list | tuple):
                ids.update(int(i) for i in source)
        return ids

    def eos_text(self) -> str:
        return str(self.tokenizer.eos_token or "</s>")

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    def tokenize(self, text: str) -> list[OffsetToken]:
        encoded = self.tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
        return [
            OffsetToken(id=int(i), text=text[start:stop], start=int(start), stop=int(stop))
            for i, (start, stop) in zip(
                encoded["input_ids"], encoded["offset_mapping"], strict=True
            )
        ]

    def decode(self, ids: list[int], *, skip_special: bool = False) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=skip_special))

    async def run(self, fn: Any, *args: Any) -> Any:
        """Run ``fn`` on the worker thread."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def logits(self, hidden: Any) -> Any:
        logits = self._head(hidden).float()
        if self._softcap:
            logits = (logits / self._softcap).tanh() * self._softcap
        return logits

    def _logprobs_of(self, hidden: Any, targets: Any) -> list[float]:
        """Log-prob of ``targets[i]`` after position ``i``, a chunk of positions at a time."""
        import torch

        logprobs: list[float] = []
        for start in range(0, len(targets), self._chunk):
            chunk = self.logits(hidden[start : start + self._chunk])
            picked = torch.log_softmax(chunk, dim=-1).gather(
                1, targets[start : start + self._chunk, None]
            )
            logprobs.extend(picked[:, 0].tolist())
        return logprobs

    def prefill(
        self, ids: list[int], prompt_logprobs: bool, cache: Any = None
    ) -> tuple[Any, Any, list[float]]:
        """(KV cache, next-token logits, log-prob of each token of ``ids`` after the first).

        With ``cache`` (the state after earlier tokens), ``ids`` continue it.
        """
        import torch

        with torch.inference_mode():
            input_ids = torch.tensor([ids], dtype=torch.long)
            out = self._decoder(input_ids=input_ids, cache=cache, use_cache=True)
            hidden = out.last_hidden_state[0]
            next_logits = self.logits(hidden[-1:])[0]
            logprobs: list[float] = []
            if prompt_logprobs and len(ids) > 1:
                logprobs = self._logprobs_of(hidden[:-1], input_ids[0, 1:])
        return out.cache, next_logits, logprobs

    def prefill_reusing(self, ids: list[int], prompt_logprobs: bool) -> Prefilled:
        """The prefill, continuing the longest kept prefix of ``ids``; keeps the result."""
        import torch

        hit = self.prefix_cache.lookup(ids)
        if hit is not None and prompt_logprobs and hit.entry.state.logprobs is None:
            hit = None  # its log-probs were not computed: compute the whole prompt
        cache: Any = None
        cached, logprobs = 0, list[float]()
        if hit is not None:
            cache = copy.deepcopy(hit.entry.state.cache)
            logits, cached = hit.entry.state.next_logits, hit.tokens
            known = hit.entry.state.logprobs or []
            if hit.whole:
                logprobs = known[: cached - 1]
                if prompt_logprobs and cached < len(ids):
                    # The first new token's log-prob comes from the kept next-token logits.
                    logprobs.append(float(torch.log_softmax(logits, dim=-1)[ids[cached]]))
            else:
                # Cut back to the shared part less its last token (computed again for the
                # logits after it); the kept log-probs cover that last token already.
                logprobs = known[:cached]
                try:
                    cache.crop(cached - len(hit.entry.ids))
                except (RuntimeError, ValueError):
                    cache = None  # a sliding-window layer past its window cannot be cut back
        if cache is None:
            cache, logits, logprobs = self.prefill(ids, prompt_logprobs)
            cached = 0
        elif cached < len(ids):
            cache, logits, more = self.prefill(ids[cached:], prompt_logprobs, cache)
            logprobs = logprobs + more
        if not prompt_logprobs:
            logprobs = []
        if cached < len(ids):
            kept = KVState(copy.deepcopy(cache), logits, logprobs if prompt_logprobs else None)
            self.prefix_cache.store(ids, kept)
        return Prefilled(cache, logits, logprobs, cached)

    def forward_one(self, token_id: int, cache: Any) -> tuple[Any, Any]:
        import torch

        with torch.inference_mode():
            out = self.model(
                input_ids=torch.tensor([[token_id]], dtype=torch.long),
                cache=cache,
                use_cache=True,
            )
            return out.cache, out.logits[0, -1].float()

    async def start(
        self,
        ids: list[int],
        params: SamplingParams,
        *,
        prompt_logprobs: bool,
        context: RequestContext,
    ) -> Session:
        done: Prefilled = await self.run(self.prefill_reusing, ids, prompt_logprobs)
        prompt = [
            PromptToken(
                id=token_id,
                text=self.decode([token_id]),
                logprob=None if i == 0 or not prompt_logprobs else done.logprobs[i - 1],
            )
            for i, token_id in enumerate(ids)
        ]
        return GGUFSession(self, ids, params, done, prompt, prompt_logprobs)

    async def aclose(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def choose(logits: Any, params: SamplingParams, generator: Any) -> tuple[int, float]:
    """Greedy or sampled next token, and its log-prob under the model's distribution."""
    import torch

    logprobs = torch.log_softmax(logits, dim=-1)
    if not params.sampling:
        token = int(torch.argmax(logits))
        return token, float(logprobs[token])
    scores = logits / (params.temperature or 1.0)
    if params.top_k is not None and params.top_k < scores.numel():
        kth = torch.topk(scores, params.top_k).values[-1]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if params.top_p is not None and params.top_p < 1.0:
        sorted_scores, order = torch.sort(scores, descending=True)
        cumulative = torch.softmax(sorted_scores, dim=-1).cumsum(dim=-1)
        drop = cumulative - torch.softmax(sorted_scores, dim=-1) >= params.top_p
        scores = scores.scatter(0, order[drop], float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    token = int(torch.multinomial(probs, 1, generator=generator))
    return token, float(logprobs[token])


class GGUFSession(Session):
    def __init__(
        self,
        backend: GGUFBackend,
        ids: list[int],
        params: SamplingParams,
        prefilled: Prefilled,
        prompt: list[PromptToken],
        prompt_logprobs: bool,
    ) -> None:
        import torch

        self.backend = backend
        self.cached_tokens = prefilled.cached_tokens
        self.params = params
        self.prompt = prompt
        self.seed = None
        self._generator = None
        if params.sampling:
            self.seed = params.seed if params.seed is not None else random.getrandbits(63)
            self._generator = torch.Generator().manual_seed(self.seed)
        self._cache = prefilled.cache
        self._logits = prefilled.next_logits
        self._pending: int | None = None
        self._pending_logprob = 0.0
        self._ids = list(ids)
        self._in_cache = len(ids)  # tokens whose keys and values the cache holds
        # Log-probs of the cached tokens, kept with the state when the request ends.
        self._logprobs: list[float] | None = list(prefilled.logprobs) if prompt_logprobs else None
        # TGI's incremental detokenization: decode a window that starts a few tokens back, so
        # leading spaces and characters split across tokens come out right.
        self._prefix_offset = max(len(ids) - DETOKENIZE_CONTEXT, 0)
        self._read_offset = len(ids)

    def _step(self) -> Token:
        backend = self.backend
        if self._pending is not None:
            # The previous token's forward pass runs only when another token is asked for,
            # so the last token of a request costs no wasted pass.
            self._cache, self._logits = backend.forward_one(self._pending, self._cache)
            self._in_cache += 1
            if self._logprobs is not None:
                self._logprobs.append(self._pending_logprob)
            self._pending = None
        token_id, logprob = choose(self._logits, self.params, self._generator)
        self._ids.append(token_id)
        if token_id in backend.special_ids:
            text, special = backend.decode([token_id]), True
            self._prefix_offset, self._read_offset = len(self._ids), len(self._ids)
        else:
            text, special = self._next_text(), False
        eos = token_id in backend.eos_ids
        self._pending = None if eos else token_id
        self._pending_logprob = logprob
        return Token(id=token_id, text=text, logprob=logprob, special=special, eos=eos)

    def _next_text(self) -> str:
        decode = self.backend.decode
        before = decode(self._ids[self._prefix_offset : self._read_offset])
        after = decode(self._ids[self._prefix_offset :])
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self._prefix_offset, self._read_offset = self._read_offset, len(self._ids)
            return after[len(before) :]
        return ""

    async def step(self) -> Token:
        token: Token = await self.backend.run(self._step)
        return token

    def _keep(self) -> None:
        """Keep the state after the prompt and what was generated (the next level's prompt)."""
        if self._cache is not None and self._in_cache > len(self.prompt):
            state = KVState(self._cache, self._logits, self._logprobs)
            self.backend.prefix_cache.store(self._ids[: self._in_cache], state)
        self._cache = None
        self._logits = None

    async def aclose(self) -> None:
        try:
            await self.backend.run(self._keep)
        except RuntimeError:  # the worker is shut down (server stopping): nothing to keep
            self._cache = None
