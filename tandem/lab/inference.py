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
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass(frozen=True)
class Generation:
    ids: list[int]  # generated tokens, the stop token excluded
    text: str
    finished: bool  # stopped by a stop token rather than by the token limit

    @property
    def tokens(self) -> int:
        """Generated tokens as billed: the stop token counts when it was written."""
        return len(self.ids) + int(self.finished)


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
    ) -> list[Generation]:
        """Greedy continuations of ``prompts``, in order; stops at EOS or any ``stop_tokens``."""
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
            width = max(len(encoded[i]) for i in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, index in enumerate(chunk):
                sequence = encoded[index]
                ids[row, width - len(sequence) :] = torch.tensor(sequence)
                mask[row, width - len(sequence) :] = 1
            with torch.no_grad():
                output = self.model.generate(  # type: ignore[operator]
                    input_ids=ids,
                    attention_mask=mask,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    eos_token_id=sorted(stop_ids),
                    pad_token_id=pad,
                )
            for row, index in enumerate(chunk):
                new = [int(t) for t in output[row, width:]]
                cut = next((k for k, t in enumerate(new) if t in stop_ids), None)
                kept = new if cut is None else new[:cut]
                text = str(self.tokenizer.decode(kept, skip_special_tokens=True))
                results[index] = Generation(kept, text, finished=cut is not None)
        return [results[i] for i in range(len(prompts))]
