"""Connecting to a server at start-up: a clear error naming it, and retries with backoff."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from chat4all.domain.errors import Unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


def redact(url: str) -> str:
    """`url` without its password, fit for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


async def connect_with_retry(
    name: str, url: str, connect: Callable[[], Awaitable[T]], timeout: float
) -> T:
    """`connect()`, retried with backoff while it raises Unavailable, for up to `timeout` seconds.
    Then an Unavailable that names the server and where it was looked for."""
    deadline = time.monotonic() + timeout
    delay = 0.5
    while True:
        try:
            return await connect()
        except Unavailable as e:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Unavailable(
                    f"{name} at {redact(url)} is not reachable: {e.detail}. "
                    "Is it running? (scripts/infra/up.sh starts the local servers)"
                ) from e
            wait = min(delay, left)
            log.warning(
                "%s at %s is not reachable (%s); retrying in %.1fs", name, redact(url), e, wait
            )
            await asyncio.sleep(wait)
            delay = min(delay * 2, 5.0)
