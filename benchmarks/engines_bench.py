"""Engine benchmark: per bundled real model, on this machine, in one run.

Reports load time (cold: from the GGUF file, converting; cached: from the converted copy),
prompt log-prob throughput, decode tokens/s in-process versus through the HTTP server (the
server's overhead as a ratio; the aim is <= 1.10), peak memory of a process with the model
loaded, and what prefix reuse saves: the prefill of a prompt that extends a kept one (the next
level's) against computing it whole. The server runs with its prefix cache off, so repeated
requests measure computation, not cache hits. Everything is measured in this run; nothing is
compared with numbers from elsewhere.

    python benchmarks/engines_bench.py [--models smollm2-135m gemma3-270m] [--threads 2]
        [--cold]   # also time a cold load (conversion) in a scratch cache directory
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

LOGPROB_PROMPT = " ".join(["The quick brown fox jumps over the lazy dog near the river bank."] * 25)
DECODE_PROMPT = "Q: Write a long story about a fox.\nA: Once upon a time"
DECODE_TOKENS = 48
EXTENSION = " Retrieval: seven times three is twenty-one; twelve plus twenty-one is thirty-three."


def child_load(model: str, cache_dir: str, threads: int) -> None:
    """Run in a fresh process: load once, print seconds and peak RSS."""
    import torch

    from services.engine.backends.gguf import GGUFBackend

    torch.set_num_threads(threads)
    started = time.perf_counter()
    backend = GGUFBackend(model, cache_dir=Path(cache_dir), threads=threads)
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": seconds,
                "source": backend.load_report.source,
                "peak_rss_mib": peak_mib,
                "dtype": backend.dtype,
            }
        )
    )


def load_in_child(model: str, cache_dir: Path, threads: int) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child-load",
            model,
            "--cache-dir",
            str(cache_dir),
            "--threads",
            str(threads),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def decode_rates(model: str, cache_dir: Path, threads: int, rounds: int) -> dict[str, Any]:
    """Prompt log-probs in-process, then decode in-process and through the server, alternating.

    Alternating the two paths round by round keeps a change in machine load (this machine is
    shared) from landing on one side of the ratio only.
    """
    import httpx

    from services.engine.backends.base import RequestContext, SamplingParams
    from services.engine.backends.gguf import GGUFBackend
    from tests.services.engine.server_fixtures import engine_server

    backend = GGUFBackend(model, cache_dir=cache_dir, threads=threads)
    ids = backend.encode(LOGPROB_PROMPT)
    backend.prefill(ids, True)  # warm-up
    started = time.perf_counter()
    for _ in range(3):
        backend.prefill(ids, True)
    logprob_s = (time.perf_counter() - started) / 3

    async def decode_in_process() -> float:
        params = SamplingParams(max_new_tokens=DECODE_TOKENS)
        prompt_ids = backend.encode(DECODE_PROMPT)
        started = time.perf_counter()
        session = await backend.start(
            prompt_ids,
            params,
            prompt_logprobs=False,
            context=RequestContext(prompt_text=DECODE_PROMPT),
        )
        for _ in range(DECODE_TOKENS):
            if (await session.step()).eos:
                raise RuntimeError("EOS before the token budget; change DECODE_PROMPT")
        return DECODE_TOKENS / (time.perf_counter() - started)

    env = {
        "TANDEM_ENGINE_THREADS": str(threads),
        "TANDEM_ENGINE_CACHE_DIR": str(cache_dir),
        "TANDEM_ENGINE_PREFIX_CACHE_TOKENS": "0",
    }
    body = {
        "inputs": DECODE_PROMPT,
        "parameters": {"max_new_tokens": DECODE_TOKENS, "details": True},
    }
    lp_body = {
        "inputs": LOGPROB_PROMPT,
        "parameters": {"max_new_tokens": 1, "details": True, "decoder_input_details": True},
    }
    local: list[float] = []
    served: list[float] = []
    with (
        engine_server("gguf", model, env=env, start_timeout_s=900) as url,
        httpx.Client(base_url=url, timeout=600) as http,
    ):
        http.post("/generate", json=body)  # warm-up
        asyncio.run(decode_in_process())
        for _ in range(rounds):
            local.append(asyncio.run(decode_in_process()))
            started = time.perf_counter()
            out = http.post("/generate", json=body).json()
            served.append(DECODE_TOKENS / (time.perf_counter() - started))
            assert out["details"]["generated_tokens"] == DECODE_TOKENS, out["details"]
        http.post("/generate", json=lp_body)
        started = time.perf_counter()
        for _ in range(3):
            http.post("/generate", json=lp_body)
        server_logprob_s = (time.perf_counter() - started) / 3
    ratios = [a / b for a, b in zip(local, served, strict=True)]
    reuse_s, whole_s, cached = prefix_reuse(backend, ids, rounds)
    return {
        "prompt_tokens": len(ids),
        "logprob_s_in_process": logprob_s,
        "logprob_s_server": server_logprob_s,
        "logprob_tok_per_s": len(ids) / logprob_s,
        "decode_tok_per_s_in_process": statistics.median(local),
        "decode_tok_per_s_server": statistics.median(served),
        "server_overhead_ratio": statistics.median(ratios),
        "prefix_cached_tokens": cached,
        "prefill_s_reusing_prefix": reuse_s,
        "prefill_s_whole": whole_s,
    }


def prefix_reuse(backend: Any, ids: list[int], rounds: int) -> tuple[float, float, int]:
    """Median seconds to prefill ``ids`` + an extension with ``ids`` kept, and whole.

    Each round starts from a cache holding ``ids`` only; the two paths alternate, as the
    decode rates do.
    """
    from services.engine.prefix_cache import PrefixCache

    extension = list(backend.tokenizer(EXTENSION, add_special_tokens=False)["input_ids"])
    prompt = ids + extension
    reusing: list[float] = []
    whole: list[float] = []
    cached = 0
    for _ in range(rounds):
        backend.prefix_cache = PrefixCache(1 << 20)
        backend.prefill_reusing(ids, True)
        started = time.perf_counter()
        cached = backend.prefill_reusing(prompt, True).cached_tokens
        reusing.append(time.perf_counter() - started)
        started = time.perf_counter()
        backend.prefill(prompt, True)
        whole.append(time.perf_counter() - started)
    return statistics.median(reusing), statistics.median(whole), cached


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="*", default=["smollm2-135m", "gemma3-270m"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5, help="alternating decode rounds")
    parser.add_argument("--cold", action="store_true", help="also time a cold (converting) load")
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--child-load", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    from services.engine.settings import EngineServerSettings

    cache_dir = args.cache_dir or EngineServerSettings().cache_dir
    if args.child_load:
        child_load(args.child_load, str(cache_dir), args.threads)
        return
    results = {}
    for model in args.models:
        row: dict[str, Any] = {}
        if args.cold:
            with tempfile.TemporaryDirectory() as scratch:
                row["load_cold"] = load_in_child(model, Path(scratch), args.threads)
        load_in_child(model, cache_dir, args.threads)  # make sure the copy exists
        row["load_cached"] = load_in_child(model, cache_dir, args.threads)
        row.update(decode_rates(model, cache_dir, args.threads, args.rounds))
        results[model] = row
        print(json.dumps({model: row}, indent=2), flush=True)
    print(
        "\nmodel          load cold  load cached  peak MiB  logprob tok/s  decode in-proc"
        "  decode server  ratio  prefill reusing / whole"
    )
    for model, row in results.items():
        cold = row.get("load_cold", {}).get("seconds")
        print(
            f"{model:14} {(f'{cold:8.1f}s' if cold else '       -'):>9}"
            f"  {row['load_cached']['seconds']:10.1f}s"
            f"  {row['load_cached']['peak_rss_mib']:8.0f}"
            f"  {row['logprob_tok_per_s']:13.0f}"
            f"  {row['decode_tok_per_s_in_process']:14.1f}"
            f"  {row['decode_tok_per_s_server']:13.1f}"
            f"  {row['server_overhead_ratio']:5.2f}"
            f"  {row['prefill_s_reusing_prefix']:.2f}s / {row['prefill_s_whole']:.2f}s"
        )


if __name__ == "__main__":
    main()
