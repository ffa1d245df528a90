"""Client webhooks: subscriptions, deliveries, Standard Webhooks signatures, the retry rule.

A webhook is one user's subscription of a URL to some event types. Each event a webhook
receives becomes one delivery, whose id (`webhook-id`) is derived from the webhook and the
event, so a bus that hands the same event over twice still yields one delivery, and retries and
replays carry the same id. Signatures follow https://www.standardwebhooks.com/:
`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` with a `whsec_`-prefixed base64 secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit
from uuid import UUID, uuid5

from chat4all.domain.errors import InvalidInput

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
MAX_URL_LENGTH = 2048

# The Standard Webhooks schedule: after the first try fails, 5 s, 5 min, 30 min, 2 h, 5 h,
# 10 h and 10 h later (eight tries over about 27.6 hours), each delay with some jitter.
DEFAULT_RETRY_SCHEDULE: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)


class WebhookEvent(StrEnum):
    """The event types a webhook can subscribe to (each is the bus topic of the same name)."""

    MESSAGE_SENT = "message.sent"
    MESSAGE_DELIVERED = "message.delivered"
    MESSAGE_READ = "message.read"
    MESSAGE_FAILED = "message.failed"
    CONVERSATION_CREATED = "conversation.created"
    FILE_UPLOADED = "file.uploaded"


class DeliveryState(StrEnum):
    PENDING = "pending"  # waiting for its next attempt (or being attempted)
    SUCCEEDED = "succeeded"
    DEAD = "dead"  # every try failed: the dead letter, until replayed


@dataclass(frozen=True)
class Webhook:
    webhook_id: UUID
    user_id: UUID
    url: str
    events: tuple[WebhookEvent, ...]
    secret: str
    created_at: datetime
    # After a rotation the old secret keeps signing until `previous_secret_until`.
    previous_secret: str | None = None
    previous_secret_until: datetime | None = None

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets that sign a delivery made at `now`: the current one, and the previous
        one while the rotation's overlap window lasts."""
        keys = [self.secret]
        if self.previous_secret and self.previous_secret_until and now < self.previous_secret_until:
            keys.append(self.previous_secret)
        return keys

    def rotated(self, new_secret: str, now: datetime, overlap: timedelta) -> Webhook:
        return Webhook(
            self.webhook_id,
            self.user_id,
            self.url,
            self.events,
            new_secret,
            self.created_at,
            previous_secret=self.secret,
            previous_secret_until=now + overlap,
        )


@dataclass(frozen=True)
class Delivery:
    """One event on its way to one webhook. `body` is the exact bytes every attempt sends."""

    delivery_id: UUID
    webhook_id: UUID
    event_id: str
    event_type: str
    body: str
    state: DeliveryState
    created_at: datetime
    next_attempt_at: datetime | None
    attempts: int = 0  # every attempt ever made, replays included
    tries: int = 0  # attempts since it was queued or last replayed: the schedule's position
    last_status_code: int | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class Attempt:
    """One HTTP attempt of a delivery, as the log shows it."""

    delivery_id: UUID
    number: int  # 1, 2, ... over the delivery's life; the store numbers an attempt it logs
    at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def delivery_id(webhook_id: UUID, event_id: str) -> UUID:
    """The same event to the same webhook is always the same delivery."""
    return uuid5(webhook_id, event_id)


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _secret_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secrets_: Sequence[str], msg_id: str, timestamp: int, body: str) -> str:
    """The `webhook-signature` header: one `v1,<signature>` per secret, space separated."""
    signed = f"{msg_id}.{timestamp}.{body}".encode()
    return " ".join(
        "v1," + base64.b64encode(hmac.new(_secret_key(s), signed, hashlib.sha256).digest()).decode()
        for s in secrets_
    )


def next_attempt_delay(tries: int, schedule: Sequence[float], jitter: float) -> float | None:
    """Seconds until the next try after `tries` failed ones, or None when the schedule is
    spent (the delivery is dead). `jitter` in [-1, 1] moves the delay by up to a fifth,
    so that endpoints that fail together are not retried in lockstep."""
    if tries < 1 or tries > len(schedule):
        return None
    return schedule[tries - 1] * (1 + 0.2 * max(-1.0, min(1.0, jitter)))


def parse_events(names: Iterable[str]) -> tuple[WebhookEvent, ...]:
    """The subscribed event types, deduplicated in the given order; InvalidInput names any
    unknown type."""
    chosen: dict[WebhookEvent, None] = {}
    for name in names:
        try:
            chosen[WebhookEvent(name)] = None
        except ValueError as e:
            known = ", ".join(e.value for e in WebhookEvent)
            raise InvalidInput(f"unknown event {name!r}; subscribe to some of: {known}") from e
    if not chosen:
        raise InvalidInput("subscribe to at least one event")
    return tuple(chosen)


def refused_address(address: str) -> str | None:
    """The kind of address a webhook may not call (SSRF): "loopback", "private", ...; None
    for a public one. The most specific kind first: a link-local address is private too."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind, flag in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("unspecified", ip.is_unspecified),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("non-global", not ip.is_global),
    ):
        if flag:
            return kind
    return None


@dataclass(frozen=True)
class Endpoint:
    """Where a webhook URL points: the host to resolve and the port to connect to."""

    url: str
    host: str
    port: int


def parse_url(url: str) -> Endpoint:
    """An http(s) URL with a host; InvalidInput says what is wrong with anything else."""
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(f"the url is {len(url)} characters long; the limit is {MAX_URL_LENGTH}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise InvalidInput(f"the url {url!r} cannot be parsed: {e}") from e
    if parts.scheme not in ("http", "https"):
        raise InvalidInput(f"the url must be http or https, not {parts.scheme or 'relative'!r}")
    if not parts.hostname:
        raise InvalidInput(f"the url {url!r} names no host")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("the url must not carry credentials; authenticate with the signature")
    return Endpoint(url, parts.hostname, port or (443 if parts.scheme == "https" else 80))
