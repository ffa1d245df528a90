"""Webhook dispatcher: sends queued deliveries, logs each attempt, schedules retries.

Deliveries wait in the metadata store (`WebhookStore`), so retries survive restarts and any
number of dispatchers can share the queue: each claims due rows under a lease. At most
`per_webhook` attempts to one webhook run at once (across dispatchers), so one slow endpoint
holds a few slots and never the rest.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from chat4all.domain.errors import Chat4AllError
from chat4all.domain.webhooks import (
    DEFAULT_RETRY_SCHEDULE,
    Attempt,
    DeliveryState,
    next_attempt_delay,
    sign,
)
from chat4all.observability import metrics
from chat4all.ports.clock import Clock
from chat4all.ports.webhooks import (
    Claim,
    HostResolver,
    HttpResult,
    Outcome,
    WebhookSender,
    WebhookStore,
)
from chat4all.services.webhooks import checked_address

log = logging.getLogger(__name__)

USER_AGENT = "Chat4All-Webhooks/1"


@dataclass(frozen=True)
class DispatchPolicy:
    retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    per_webhook: int = 4
    max_in_flight: int = 64
    # Longer than the HTTP timeout: a lease that lapses mid-attempt lets another dispatcher
    # send the same delivery again.
    lease: timedelta = timedelta(seconds=60)
    poll_seconds: float = 1.0
    allow_private_urls: bool = False


class WebhookDispatcher:
    def __init__(
        self,
        store: WebhookStore,
        sender: WebhookSender,
        resolver: HostResolver,
        clock: Clock,
        policy: DispatchPolicy,
        jitter: Callable[[], float] = lambda: random.uniform(-1.0, 1.0),
    ) -> None:
        self._store = store
        self._sender = sender
        self._resolver = resolver
        self._clock = clock
        self._policy = policy
        self._jitter = jitter

    async def run(self) -> None:
        running: dict[asyncio.Task[None], Claim] = {}
        try:
            while True:
                free = self._policy.max_in_flight - len(running)
                claims = await self._claim(free) if free > 0 else []
                for claim in claims:
                    task = asyncio.create_task(self.attempt(claim))
                    running[task] = claim
                    task.add_done_callback(_finished(running))
                if not claims:
                    await self._clock.sleep(self._policy.poll_seconds)
        finally:
            abandoned = list(running.values())
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            # Stopping (a restart, a deploy): what was cut short is due again at once, not
            # when its lease would have ended.
            await self._store.release_claims(abandoned, self._clock.now())

    async def dispatch_due(self) -> int:
        """Attempt every delivery due now, waiting for the attempts; how many there were."""
        done = 0
        while claims := await self._claim(self._policy.max_in_flight):
            await asyncio.gather(*(self.attempt(c) for c in claims))
            done += len(claims)
        return done

    async def _claim(self, limit: int) -> list[Claim]:
        return await self._store.claim_deliveries(
            self._clock.now(), limit, self._policy.per_webhook, self._policy.lease
        )

    async def attempt(self, claim: Claim) -> None:
        """One attempt of a claimed delivery; its outcome goes to the store."""
        delivery, webhook = claim.delivery, claim.webhook
        at = self._clock.now()
        started = self._clock.monotonic()
        msg_id = str(delivery.delivery_id)
        timestamp = int(at.timestamp())
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(
                webhook.signing_secrets(at), msg_id, timestamp, delivery.body
            ),
        }
        try:
            # Checked again at every attempt: the name may point elsewhere since registration
            # (DNS rebinding), and the request goes to the very address that was checked.
            addresses = await checked_address(
                self._resolver, webhook.url, allow_private=self._policy.allow_private_urls
            )
            result = await self._sender.post(
                webhook.url, addresses[0], headers, delivery.body.encode()
            )
        except Chat4AllError as e:
            result = HttpResult(None, e.detail)
        elapsed_ms = round((self._clock.monotonic() - started) * 1000)
        attempt = Attempt(delivery.delivery_id, 0, at, elapsed_ms, result.status_code, result.error)
        if not attempt.succeeded:
            metrics.count_webhook_error(attempt.status_code)
        try:
            await self._store.finish_attempt(claim, self._outcome(claim, attempt))
        except Chat4AllError:
            # The lease runs out and the delivery is attempted again: at least once.
            log.exception("webhooks: could not record an attempt of %s", msg_id)

    def _outcome(self, claim: Claim, attempt: Attempt) -> Outcome:
        if attempt.succeeded:
            return Outcome(attempt, DeliveryState.SUCCEEDED, None)
        delay = next_attempt_delay(
            claim.delivery.tries + 1, self._policy.retry_schedule, self._jitter()
        )
        if delay is None:
            log.warning(
                "webhooks: delivery %s to %s is dead after %d tries (%s)",
                claim.delivery.delivery_id,
                claim.webhook.webhook_id,
                claim.delivery.tries + 1,
                attempt.error or attempt.status_code,
            )
            return Outcome(attempt, DeliveryState.DEAD, None)
        return Outcome(attempt, DeliveryState.PENDING, attempt.at + timedelta(seconds=delay))


def _finished(running: dict[asyncio.Task[None], Claim]) -> Callable[[asyncio.Task[None]], None]:
    def done(task: asyncio.Task[None]) -> None:
        running.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            # A bug, not an endpoint's failure: the lease runs out and the delivery is retried.
            log.error("webhooks: an attempt failed", exc_info=task.exception())

    return done
