"""Rate limits: one token bucket per key (for example `send:<user id>`)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from chat4all.domain.ratelimit import Decision, Rule


class RateLimiter(Protocol):
    async def take(self, key: str, rule: Rule, now: datetime, cost: int = 1) -> Decision:
        """Take `cost` tokens from `key`'s bucket if it holds them, atomically (several
        gateways share one limiter). A refused request takes nothing."""
        ...
