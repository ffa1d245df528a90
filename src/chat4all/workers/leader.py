"""Singleton jobs in a cluster: a job runs only in the process that leads its election."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable

from chat4all.domain.errors import Unavailable
from chat4all.ports.clock import Clock
from chat4all.ports.registry import DEFAULT_TTL, Elections, Leadership

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


def default_candidate() -> str:
    """A name for this process in elections: host, pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


async def run_as_leader(
    elections: Elections,
    name: str,
    job: Job,
    *,
    clock: Clock,
    candidate: str | None = None,
    ttl: int = DEFAULT_TTL,
    retry_delay: float = 1.0,
) -> None:
    """Run `job` only while this process leads election `name`, forever: campaign, run the job,
    cancel it when leadership is lost, campaign again.

    Returns when the job returns. A job that fails resigns and raises (the caller's supervisor
    restarts it); cancelling `run_as_leader` cancels the job and resigns, so that another
    candidate takes over at once. An unreachable registry is retried every `retry_delay`."""
    candidate = candidate or default_candidate()
    while True:
        try:
            leadership = await elections.campaign(name, candidate, ttl=ttl)
        except Unavailable as e:
            log.warning("election %s: %s; retrying in %.1fs", name, e.detail, retry_delay)
            await clock.sleep(retry_delay)
            continue
        log.info("%s leads %s", candidate, name)
        try:
            if await _run_while_leader(leadership, job):
                return
        finally:
            await leadership.resign()
        log.warning("%s lost the lead of %s; the job was stopped", candidate, name)


async def _run_while_leader(leadership: Leadership, job: Job) -> bool:
    """True when the job returned while leading; False when leadership was lost first (the job
    is cancelled and awaited). The job's error propagates."""

    async def work() -> None:
        await job()

    running = asyncio.create_task(work(), name=f"leader:{leadership.name}")
    lost = asyncio.create_task(leadership.wait_lost(), name=f"lost:{leadership.name}")
    try:
        done, _ = await asyncio.wait((running, lost), return_when=asyncio.FIRST_COMPLETED)
    finally:  # also when we are cancelled: stop both before resigning
        for task in (running, lost):
            task.cancel()
        await asyncio.gather(running, lost, return_exceptions=True)
    if running in done:
        running.result()  # the job's error, if it failed
        return True
    return False
