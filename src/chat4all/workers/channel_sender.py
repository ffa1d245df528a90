"""Sending one delivery job to an external channel: limits, retries with backoff and jitter,
the platform's Retry-After, a circuit breaker per channel account, the fallback channel, and
the dead letter when nothing is left to try."""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID, uuid4

from chat4all.domain.delivery import BreakerState, CircuitBreaker, RetryPolicy
from chat4all.domain.errors import NotFound
from chat4all.domain.events import Event, Topic, status_changed
from chat4all.domain.messages import StatusChange
from chat4all.domain.status import DeliveryStatus
from chat4all.ports.channels import ChannelDirectory, DeadLetter, SentOnChannel
from chat4all.ports.clock import Clock
from chat4all.ports.connectors import ChannelAccount, Connector, OutboundMessage, SendError

if TYPE_CHECKING:
    from chat4all.services.files import ChannelFile

log = logging.getLogger(__name__)

ACCOUNT_CACHE_SECONDS = 30.0


class DeliveryListener(Protocol):
    """Where metrics hook in (connector errors, breaker changes); the default does nothing."""

    def send_failed(self, channel: str, account_id: str, error: SendError) -> None: ...

    def breaker_changed(self, channel: str, account_id: str, state: BreakerState) -> None: ...


class FileLinks(Protocol):
    """Where a file message's link comes from (the file service)."""

    async def link_for_channel(self, file_id: UUID) -> ChannelFile: ...


class NoListener:
    def send_failed(self, channel: str, account_id: str, error: SendError) -> None:
        pass

    def breaker_changed(self, channel: str, account_id: str, state: BreakerState) -> None:
        pass


@dataclass(frozen=True)
class SenderPolicy:
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breaker_failures: int = 5
    breaker_reset_seconds: float = 5.0


class ChannelSender:
    def __init__(
        self,
        directory: ChannelDirectory,
        connectors: Mapping[str, Connector],
        clock: Clock,
        policy: SenderPolicy,
        listener: DeliveryListener | None = None,
        rng: random.Random | None = None,
        files: FileLinks | None = None,
    ) -> None:
        self._directory = directory
        self._connectors = connectors
        self._clock = clock
        self._policy = policy
        self._listener = listener or NoListener()
        self._files = files
        self._rng = rng or random.Random()
        self._breakers: dict[tuple[str, str], CircuitBreaker] = {}
        self._accounts: dict[tuple[str, str | None], tuple[float, ChannelAccount | None]] = {}

    async def deliver(self, job: dict[str, Any]) -> list[Event]:
        """Try the job until it goes out or nothing is left to try; the events to publish."""
        channel = job["channel"]
        message = job["message"]
        message_id, recipient = UUID(message["message_id"]), UUID(job["recipient_id"])
        if await self._directory.sent_for(message_id, recipient, channel) is not None:
            return []  # a replayed job (a restart, a rebalance) that already went out
        connector = self._connectors.get(channel)
        if connector is None:
            return await self._give_up(job, f"no connector for channel '{channel}' is installed")
        account = await self._account(channel, job.get("account_id"))
        if account is None:
            return await self._give_up(job, f"no enabled {channel} account to send from")
        outbound, details = await self._outbound(connector, job)
        if isinstance(outbound, str):
            return await self._give_up(job, outbound)
        outcome = await self._send_with_retries(connector, account, outbound)
        if isinstance(outcome, SendError):
            return await self._give_up(job, outcome.reason, outcome.code)
        platform_id, sent_at = outcome
        await self._directory.record_sent(
            SentOnChannel(
                channel,
                account.account_id,
                platform_id,
                message_id,
                UUID(message["conversation_id"]),
                recipient,
                job["contact_id"],
                sent_at,
            )
        )
        now = self._clock.now()
        details |= {"platform_message_id": platform_id, "account_id": account.account_id}
        change = StatusChange(
            message_id,
            UUID(message["conversation_id"]),
            recipient,
            channel,
            DeliveryStatus.SENT,
            now,
            details,
        )
        return [status_changed(change)]

    async def _send_with_retries(
        self,
        connector: Connector,
        account: ChannelAccount,
        outbound: OutboundMessage,
    ) -> tuple[str, datetime] | SendError:
        """The platform's message id and when the call that took it began (a read watermark
        is the platform's time, which is no earlier), or the last error."""
        channel, account_id = account.channel_type, account.account_id
        breaker = self._breakers.setdefault(
            (channel, account_id),
            CircuitBreaker(self._policy.breaker_failures, self._policy.breaker_reset_seconds),
        )
        retry = self._policy.retry
        error = SendError("not tried", retryable=True)
        for attempt in range(1, retry.attempts + 1):
            now = self._clock.monotonic()
            if not breaker.allow(now):
                error = SendError(
                    f"circuit open for {channel} account {account_id} after "
                    f"{breaker.failures} failures in a row; next probe in "
                    f"{breaker.retry_in(now):.1f} s",
                    retryable=True,
                    retry_after=breaker.retry_in(now),
                    code="circuit_open",
                )
            else:
                before, began = breaker.state, self._clock.now()
                try:
                    result = await connector.send(account, outbound)
                except SendError as e:
                    error = e
                    self._listener.send_failed(channel, account_id, e)
                    if not e.retryable:
                        breaker.succeeded()  # the platform answered: it is up
                        return e
                    state = breaker.failed(self._clock.monotonic())
                else:
                    state = breaker.succeeded()
                    if state is not before:
                        self._listener.breaker_changed(channel, account_id, state)
                    return result.platform_message_id, began
                if state is not before:
                    log.warning("%s/%s: circuit %s (%s)", channel, account_id, state, error.reason)
                    self._listener.breaker_changed(channel, account_id, state)
            if attempt < retry.attempts:
                await self._clock.sleep(retry.delay(attempt, error.retry_after, self._rng))
        return error

    async def _give_up(
        self, job: dict[str, Any], reason: str, code: str | None = None
    ) -> list[Event]:
        """A failed status for this channel, then the next channel of the recipient's fallback
        order, or a dead letter when none is left."""
        message = job["message"]
        fallback: list[dict[str, Any]] = list(job.get("fallback") or [])
        details: dict[str, Any] = {"reason": reason}
        if code:
            details["code"] = code
        if fallback:
            details["fallback_to"] = fallback[0]["channel"]
        change = StatusChange(
            UUID(message["message_id"]),
            UUID(message["conversation_id"]),
            UUID(job["recipient_id"]),
            job["channel"],
            DeliveryStatus.FAILED,
            self._clock.now(),
            details,
        )
        events = [status_changed(change)]
        if fallback:
            nxt = {**job, **fallback[0], "fallback": fallback[1:]}
            events.append(
                Event(
                    type=Topic.MESSAGE_DELIVERY,
                    key=message["conversation_id"],
                    data=nxt,
                    time=self._clock.now(),
                    id=f"delivery:{message['message_id']}:{job['recipient_id']}:{nxt['channel']}",
                )
            )
            return events
        letter = DeadLetter(
            uuid4(),
            job["channel"],
            job.get("account_id"),
            UUID(message["message_id"]),
            UUID(job["recipient_id"]),
            reason,
            job,
            self._clock.now(),
        )
        await self._directory.add_dead_letter(letter)
        log.warning(
            "dead letter %s: %s to %s: %s", letter.id, job["channel"], job["recipient_id"], reason
        )
        events.append(
            Event(
                type=Topic.DELIVERY_DEAD_LETTER,
                key=message["conversation_id"],
                data={"dead_letter_id": str(letter.id), "reason": reason, "job": job},
                time=letter.created_at,
            )
        )
        return events

    async def _outbound(
        self, connector: Connector, job: dict[str, Any]
    ) -> tuple[OutboundMessage | str, dict[str, Any]]:
        """What goes to the platform, and notes for the status history; or why nothing can."""
        message, channel = job["message"], connector.channel_type
        payload, caps = message["payload"], connector.capabilities
        to, reference = job["contact_id"], message["message_id"]
        if payload.get("type", "text") == "text":
            text = payload.get("text") or ""
            if len(text) > caps.text_limit:
                return (
                    f"the text is {len(text)} characters; {channel} takes at most {caps.text_limit}",
                    {},
                )
            return OutboundMessage(to=to, text=text, reference=reference), {}
        if self._files is None:
            return f"files cannot be sent to {channel}: this process has no file service", {}
        try:
            file = await self._files.link_for_channel(UUID(payload["file_reference"]["file_id"]))
        except NotFound as e:
            return e.detail, {}
        if not file.url.startswith(("https://", "http://")):
            return "CHAT4ALL_PUBLIC_BASE_URL is not set, so no platform can fetch the file", {}
        kind = file_kind(file.mime_type)
        limit = caps.file_limits.get(kind, 0)
        if file.size_bytes <= limit:
            return OutboundMessage(
                to=to,
                file_url=file.url,
                file_kind=kind,
                filename=file.filename,
                reference=reference,
            ), {}
        # Too large for the channel: the contact still gets it, as a link (never silence).
        text = f"{file.filename} ({_size(file.size_bytes)}): {file.url}"
        reason = f"{channel} takes {kind} files up to {_size(limit)}; sent as a link"
        if len(text) > caps.text_limit:
            return f"the file is too large for {channel} and its link too long for a text", {}
        return OutboundMessage(to=to, text=text, reference=reference), {
            "as": "link",
            "reason": reason,
        }

    async def _account(self, channel: str, account_id: str | None) -> ChannelAccount | None:
        """The contact's account, or the channel's first enabled one for identities people
        linked themselves; cached briefly, so a disabled account stops within seconds."""
        key = (channel, account_id)
        cached = self._accounts.get(key)
        now = self._clock.monotonic()
        if cached is not None and now - cached[0] < ACCOUNT_CACHE_SECONDS:
            return cached[1]
        if account_id is not None:
            found = await self._directory.get_account(channel, account_id)
        else:
            found = next(
                (a for a in await self._directory.list_accounts(channel) if a.enabled), None
            )
        account = found if found is not None and found.enabled else None
        self._accounts[key] = (now, account)
        return account


def file_kind(mime_type: str) -> str:
    """The platforms' four kinds of attachment."""
    major = mime_type.split("/", 1)[0]
    return major if major in ("image", "video", "audio") else "document"


def _size(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB" if n >= 1 << 20 else f"{n} bytes"
