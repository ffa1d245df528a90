"""Channel connectors: how Chat4All talks to one external messaging platform.

A connector is a plugin: a class registered in the `chat4all.connectors` entry-point group
(the built-in ones are registered in pyproject.toml the same way a third-party package would
be), built with one shared `httpx.AsyncClient`. It turns an outbound message into the platform's API
call, and a platform's webhook (raw body and headers) into inbound messages and status
updates. It keeps no state: retries, circuit breakers and dead letters are the delivery
worker's, so every connector gets them alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Protocol

from chat4all.domain.status import DeliveryStatus

ENTRY_POINT_GROUP = "chat4all.connectors"


@dataclass(frozen=True)
class Capabilities:
    """What a channel can do; the capability matrix in docs/connectors.md lists them."""

    delivery_receipts: bool  # the platform reports `delivered`
    read_receipts: bool  # the platform reports `read`
    text_limit: int  # characters per text message
    file_limits: Mapping[str, int]  # bytes by kind: image, video, audio, document
    window_hours: int | None  # free-form replies only this long after the contact's last message
    # The answer to a webhook body the connector cannot parse: Telegram holds every later update
    # until one is accepted, so it gets 200 (and a log line); Meta retries, so 400 is safe.
    malformed_webhook_status: int = 400


@dataclass(frozen=True)
class ChannelAccount:
    """One account on a channel (a WhatsApp number, a bot, a page): `channel_configs`."""

    account_id: str  # the name in the webhook URL: /v1/channels/{channel_type}/{account_id}/webhook
    channel_type: str
    config: Mapping[str, Any]  # base_url, credentials, webhook secrets, inbox_user_ids, ...
    enabled: bool = True

    def setting(self, name: str, default: Any = None) -> Any:
        return self.config.get(name, default)

    def required(self, name: str) -> str:
        value = self.config.get(name)
        if not value:
            raise SendError(
                f"account {self.account_id} has no `{name}` in its configuration", retryable=False
            )
        return str(value)


@dataclass(frozen=True)
class OutboundMessage:
    """What to send to one contact. A file goes by URL (the platform downloads it)."""

    to: str  # the contact's id on the channel (wa_id, chat_id, PSID, IGSID)
    text: str | None = None
    file_url: str | None = None
    file_kind: str | None = None  # image | video | audio | document
    filename: str | None = None
    reference: str | None = None  # our message id, echoed by platforms that support it


@dataclass(frozen=True)
class SendResult:
    platform_message_id: str


class SendError(Exception):
    """A send that did not happen. `retryable` failures are tried again (after `retry_after`
    seconds when the platform says so); the others fail the delivery at once."""

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        self.code = code


@dataclass(frozen=True)
class InboundMessage:
    """A contact wrote in."""

    platform_message_id: str  # unique within the account: the dedupe key
    sender_id: str
    sender_name: str | None
    text: str | None
    timestamp: datetime | None  # the platform's time, kept as `channel_timestamp`
    order_key: int  # sorts a contact's messages as the platform sent them (update_id, ts)
    attachments: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class StatusUpdate:
    """A receipt. With `watermark`, it covers every message sent to the contact up to `at`."""

    contact_id: str
    status: DeliveryStatus
    at: datetime
    platform_message_ids: tuple[str, ...] = ()
    watermark: bool = False
    error: str | None = None


@dataclass(frozen=True)
class WebhookBatch:
    messages: tuple[InboundMessage, ...] = ()
    statuses: tuple[StatusUpdate, ...] = ()


class WebhookRejected(Exception):
    """The webhook is not from the platform (bad signature or verify token): `status` 401/403."""

    def __init__(self, reason: str, status: int = 403) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class WebhookMalformed(Exception):
    """The webhook is signed but its body is not what the platform sends."""


class Connector(Protocol):
    channel_type: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    async def send(self, account: ChannelAccount, message: OutboundMessage) -> SendResult:
        """Send one message; raises SendError."""
        ...

    def verify_handshake(self, account: ChannelAccount, query: Mapping[str, str]) -> str:
        """The body answering the platform's subscription check (`GET` on the webhook URL);
        raises WebhookRejected. Platforms without one raise WebhookRejected(…, 405)."""
        ...

    def verify_webhook(
        self, account: ChannelAccount, body: bytes, headers: Mapping[str, str]
    ) -> None:
        """Raises WebhookRejected unless the request comes from the platform."""
        ...

    def parse_webhook(self, account: ChannelAccount, body: bytes) -> WebhookBatch:
        """The messages and receipts in a verified body; raises WebhookMalformed."""
        ...
