"""The roll-ups' histograms: their buckets as SQL (one definition for the rows written at
settlement and for the raw rows a report adds at the edges of its range) and what a bucket
stands for when a report reads it back.

Latency: bucket 0 holds [0, 1) ms; bucket b >= 1 holds [2^((b-1)/16), 2^(b/16)) ms, 16 buckets
per doubling. A bucket reads back as its geometric middle, within 2^(1/32) - 1 < 2.2% of every
latency in it (0.5 ms in bucket 0), so a percentile interpolated between two read-back values is
within 2.2% of the one interpolated between the latencies themselves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Float, Integer, case, cast, extract, func, literal
from sqlalchemy.sql.elements import ColumnElement

LATENCY_STEPS = 16  # buckets per doubling of the latency
LATENCY_ERROR = 2 ** (1 / (2 * LATENCY_STEPS)) - 1  # the largest relative error of a read-back
SCORE_BUCKETS = 10  # tenths of [0, 1]


def latency_bucket(finished: ColumnElement[Any], created: ColumnElement[Any]) -> ColumnElement[int]:
    ms = cast(extract("epoch", finished - created), Float) * 1000
    # ln(2) computed by Postgres like the rest: a latency on a bucket edge lands on the same
    # side whether it is rolled up or read raw.
    steps = func.floor(
        func.ln(ms, type_=Float) * LATENCY_STEPS / func.ln(literal(2.0, Float), type_=Float)
    )
    return case((ms < 1, 0), else_=1 + cast(steps, Integer))


def latency_ms(bucket: int) -> float:
    """The value a bucket reads back as."""
    return 0.5 if bucket <= 0 else 2 ** ((bucket - 0.5) / LATENCY_STEPS)


def percentiles(histogram: Mapping[int, int], qs: Sequence[float]) -> tuple[float | None, ...]:
    """``percentile_cont`` over the read-back values: linear between the two ranks around
    q · (n - 1)."""
    n = sum(histogram.values())
    if n == 0:
        return tuple(None for _ in qs)
    ordered = sorted((b, c) for b, c in histogram.items() if c > 0)

    def value_at(rank: int) -> float:
        seen = 0
        for bucket, count in ordered:
            seen += count
            if rank < seen:
                return latency_ms(bucket)
        return latency_ms(ordered[-1][0])

    result: list[float | None] = []
    for q in qs:
        rank = q * (n - 1)
        low, high = math.floor(rank), math.ceil(rank)
        below = value_at(low)
        result.append(below + (rank - low) * (value_at(high) - below))
    return tuple(result)


def score_bucket(score: ColumnElement[Any]) -> ColumnElement[int]:
    """The tenth of [0, 1] a classifier score falls in; 1.0 joins the last."""
    tenth = cast(func.floor(cast(score, Float) * SCORE_BUCKETS), Integer)
    return func.least(func.greatest(tenth, 0), SCORE_BUCKETS - 1)
