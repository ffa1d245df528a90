"""Token buckets in this process's memory (the embedded profile)."""

from __future__ import annotations

from datetime import datetime

from chat4all.domain.ratelimit import Decision, Rule, take

MAX_BUCKETS = 100_000  # past that, full buckets (idle keys) are forgotten


class InProcessRateLimiter:
    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    async def take(self, key: str, rule: Rule, now: datetime, cost: int = 1) -> Decision:
        at = now.timestamp()
        tokens, last = self._buckets.get(key, (None, None))
        decision, left = take(rule, tokens, last, at, cost)
        self._buckets[key] = (left, at)
        if len(self._buckets) > MAX_BUCKETS:
            self._forget_full(rule, at)
        return decision

    def _forget_full(self, rule: Rule, now: float) -> None:
        full = [
            k for k, (t, at) in self._buckets.items() if t + (now - at) * rule.rate >= rule.burst
        ]
        for key in full:
            del self._buckets[key]
