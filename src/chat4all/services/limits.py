"""Rate limits as services apply them: take a token or refuse with `RateLimited`."""

from __future__ import annotations

from datetime import datetime

from chat4all.domain.errors import RateLimited
from chat4all.domain.ratelimit import Rule
from chat4all.ports.ratelimit import RateLimiter


async def take_or_refuse(
    limiter: RateLimiter | None, key: str, rule: Rule | None, now: datetime, what: str
) -> None:
    """Take a token from `key`'s bucket; `RateLimited` (saying how many `what` and when to
    retry) when it is empty. No limiter or no rule: no limit."""
    if rule is None or limiter is None:
        return
    decision = await limiter.take(key, rule, now)
    if not decision.allowed:
        raise RateLimited(
            f"more than {rule.burst} {what} at once or {rule.rate:g} a second; "
            f"retry in {decision.retry_after:.2f} s",
            decision.retry_after,
        )
