"""Greedy, batched generation with a lab model loaded from its directory, in process.

This is what the measurements use; the served path (the engine server's transformers backend)
loads the same directories with ``AutoModelForCausalLM`` / ``AutoTokenizer``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass(frozen=True)
class Generation:
    ids: list[int]  # generated tokens, the stop token excluded
    text: str
    finished: bool  # stopped by a stop token rather than by the token limit
    # Each billed token's log-prob (asked for with ``logprobs=True``), the stop token included.
    logprobs: tuple[float, ...] = ()

    @property
    def tokens(self) -> int:
        """Generated tokens as billed: the stop token counts when it was written."""
        return len(self.ids) + int(self.finished)

    @property
    def mean_logprob(self) -> float | None:
        return sum(self.logprobs) / len(self.logprobs) if self.logprobs else None


def _padded(
    encoded: Sequence[Sequence[int]], chunk: Sequence[int], pad: int, *, left: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and attention mask of ``chunk``'s sequences, padded on the left (to generate
    after each) or on the right (to score each from position 0)."""
    import torch

    width = max(len(encoded[i]) for i in chunk)
    ids = torch.full((len(chunk), width), pad, dtype=torch.long)
    mask = torch.zeros((len(chunk), width), dtype=torch.long)
    for row, index in enumerate(chunk):
        sequence = encoded[index]
        span = slice(width - len(sequence), width) if left else slice(0, len(sequence))
        ids[row, span] = torch.tensor(sequence)
        mask[row, span] = 1
    return ids, mask


@dataclass
class LabModel:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    @classmethod
    def load(cls, directory: Path) -> LabModel:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(directory))
        import torch

        # Weights are stored in bfloat16; computing in float32 keeps greedy decoding stable.
        model = AutoModelForCausalLM.from_pretrained(str(directory), dtype=torch.float32)
        model.eval()
        return cls(model, tokenizer)

    def token_id(self, token: str) -> int:
        found = self.tokenizer.convert_tokens_to_ids(token)
        assert isinstance(found, int), token
        return found

    def generate(
        self,
        prompts: Sequence[str],
        max_new_tokens: int,
        stop_tokens: Sequence[str] = (),
        batch_size: int = 32,
        logprobs: bool = False,
    ) -> list[Generation]:
        """Greedy continuations of ``prompts``, in order; stops at EOS or any ``stop_tokens``.
        With ``logprobs``, each generation carries its tokens' log-probs."""
        import torch

        eos = self.tokenizer.eos_token_id
        assert isinstance(eos, int)
        stop_ids = {eos} | {self.token_id(t) for t in stop_tokens}
        encoded = [self.tokenizer(p)["input_ids"] for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
        results: dict[int, Generation] = {}
        pad = int(self.tokenizer.pad_token_id)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            ids, mask = _padded(encoded, chunk, pad, left=True)
            width = ids.shape[1]
            with torch.no_grad():
                output = self.model.generate(  # type: ignore[operator]
                    input_ids=ids,
                    attention_mask=mask,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    eos_token_id=sorted(stop_ids),
                    pad_token_id=pad,
                    output_scores=logprobs,
                    return_dict_in_generate=True,
                )
            steps = [torch.log_softmax(s.float(), dim=-1) for s in output.scores or ()]
            for row, index in enumerate(chunk):
                new = [int(t) for t in output.sequences[row, width:]]
                cut = next((k for k, t in enumerate(new) if t in stop_ids), None)
                kept = new if cut is None else new[:cut]
                billed = new[: len(kept) + (cut is not None)]
                text = str(self.tokenizer.decode(kept, skip_special_tokens=True))
                values = tuple(float(steps[k][row, t]) for k, t in enumerate(billed) if logprobs)
                results[index] = Generation(kept, text, cut is not None, values)
        return [results[i] for i in range(len(prompts))]

    def prompt_logprobs(
        self, prompts: Sequence[str], batch_size: int = 64
    ) -> list[list[float | None]]:
        """Each prompt token's log-prob given the tokens before it (None for the first), as an
        engine's prefill details report them: what the sufficiency classifier's features read."""
        import torch

        pad = int(self.tokenizer.pad_token_id)
        encoded = [self.tokenizer(p)["input_ids"] for p in prompts]
        out: list[list[float | None]] = [[] for _ in prompts]
        order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            ids, mask = _padded(encoded, chunk, pad, left=False)
            with torch.no_grad():
                logits = self.model(input_ids=ids, attention_mask=mask).logits
            logp = torch.log_softmax(logits.float(), dim=-1)
            for row, index in enumerate(chunk):
                n = len(encoded[index])
                picked = logp[row, : n - 1].gather(1, ids[row, 1:n].unsqueeze(1)).squeeze(1)
                out[index] = [None, *(round(float(v), 5) for v in picked)]
        return out
