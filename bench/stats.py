"""Percentiles and summaries of latency samples (kept in seconds, reported in milliseconds)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any


def percentile(ordered: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0..100) of already sorted values, interpolating linearly between
    the two nearest ranks (numpy's default). NaN for no values."""
    if not ordered:
        return math.nan
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile {q} is not within 0..100")
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


@dataclass(frozen=True, slots=True)
class Summary:
    """A latency distribution in milliseconds."""

    count: int
    mean: float
    p50: float
    p95: float
    p99: float
    max: float

    def to_dict(self) -> dict[str, Any]:
        return {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in asdict(self).items()
        }

    def brief(self) -> str:
        """`p50/p95/p99` in ms, for a table cell."""
        if self.count == 0:
            return "-"
        return f"{self.p50:.1f}/{self.p95:.1f}/{self.p99:.1f}"


def summarize(seconds: Iterable[float]) -> Summary:
    """Count, mean, p50, p95, p99 and max of samples given in seconds, as milliseconds."""
    ordered = sorted(seconds)
    if not ordered:
        return Summary(0, math.nan, math.nan, math.nan, math.nan, math.nan)
    ms = 1000.0
    return Summary(
        count=len(ordered),
        mean=sum(ordered) / len(ordered) * ms,
        p50=percentile(ordered, 50) * ms,
        p95=percentile(ordered, 95) * ms,
        p99=percentile(ordered, 99) * ms,
        max=ordered[-1] * ms,
    )
