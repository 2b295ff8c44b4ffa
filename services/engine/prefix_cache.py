"""A bounded prefix (KV) cache: a prompt that extends earlier work continues from it.

Each Tandem level re-sends the previous level's prompt with more text after it (the question,
then the insights so far), so most of a prompt has often been computed already, by the
previous prompt or by the text generated after it. As TGI's and vLLM's prefix caching do, the
server keeps the state after such token sequences and a request starts from the longest one
that is a prefix of its prompt, computing only the rest.

A prompt that shares only part of an entry (the entry goes on differently, or a token at the
seam was merged with the next text when the new prompt was tokenized: a prompt ending in
``"\n\n"`` followed by ``"Goal:"`` becomes one ``"\n\nGoal:"`` token) reuses the shared part
less its last token, because the next-token logits kept with an entry are only those after
its end: the last shared token is computed again to get them. The cache holds at most
``max_tokens`` tokens over all entries; the least recently used entries go first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

S = TypeVar("S")


@dataclass(frozen=True)
class CachedPrefix(Generic[S]):
    ids: tuple[int, ...]
    state: S  # what the backend needs to continue after these tokens


@dataclass(frozen=True)
class Reuse(Generic[S]):
    entry: CachedPrefix[S]
    tokens: int  # leading tokens of the prompt served from the entry

    @property
    def whole(self) -> bool:
        """The whole entry begins the prompt (else it must be cut back to ``tokens``)."""
        return self.tokens == len(self.entry.ids)


def _shared(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class PrefixCache(Generic[S]):
    def __init__(self, max_tokens: int) -> None:
        self.max_tokens = max_tokens
        self._entries: OrderedDict[tuple[int, ...], CachedPrefix[S]] = OrderedDict()
        self._tokens = 0
        self._lock = threading.Lock()

    @property
    def tokens(self) -> int:
        return self._tokens

    def lookup(self, ids: Sequence[int]) -> Reuse[S] | None:
        """The entry that serves most leading tokens of ``ids`` (possibly all), or None."""
        wanted = tuple(ids)
        with self._lock:
            best: Reuse[S] | None = None
            for key, entry in self._entries.items():
                shared = _shared(key, wanted)
                tokens = shared if shared == len(key) else shared - 1
                if tokens > 0 and (best is None or tokens > best.tokens):
                    best = Reuse(entry, tokens)
            if best is not None:
                self._entries.move_to_end(best.entry.ids)
            return best

    def store(self, ids: Sequence[int], state: S) -> None:
        key = tuple(ids)
        if not key or len(key) > self.max_tokens:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._tokens -= len(key)
            self._entries[key] = CachedPrefix(key, state)
            self._tokens += len(key)
            while self._tokens > self.max_tokens:
                evicted, _ = self._entries.popitem(last=False)
                self._tokens -= len(evicted)
