"""CPU time of one scoring decision's own work: features from the executor's prompt log-probs
plus the ONNX classifier (the shipped default), beside its floor, and beside a baseline measured
in the same run (serialising the same log-probs as JSON, the least a scorer does with them).
Asserts nothing.

    python benchmarks/scoring_bench.py [--tokens 300] [--calls 2000]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.classifier.runtime import DEFAULT_MODEL_PATH, Served, _load
from shared.features import features

FLOOR_MS = 0.5


def cpu_ms_per_call(call: Callable[[], object], calls: int) -> float:
    for _ in range(calls // 10):  # warm: ONNX's first runs allocate
        call()
    started = time.process_time()
    for _ in range(calls):
        call()
    return (time.process_time() - started) / calls * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=300)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()

    classifier = _load(DEFAULT_MODEL_PATH, "bench", Served((0.5,), None, None))
    rng = random.Random(1)
    logprobs: list[float | None] = [None, *(-rng.random() * 5 for _ in range(args.tokens))]

    baseline = cpu_ms_per_call(lambda: json.dumps(logprobs), args.calls)
    scoring = cpu_ms_per_call(lambda: classifier.score(features(logprobs, 1, 32)), args.calls)
    print(f"{args.tokens} prompt tokens, {args.calls} calls, CPU time per call")
    print(f"  baseline (json.dumps of the log-probs)  {baseline:8.3f} ms")
    verdict = "ok" if scoring <= FLOOR_MS else "ABOVE FLOOR"
    print(
        f"  features + ONNX                         {scoring:8.3f} ms"
        f"  {scoring / baseline:5.1f}x baseline  floor {FLOOR_MS} ms  {verdict}"
    )


if __name__ == "__main__":
    main()
