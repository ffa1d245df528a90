"""Messenger Send API (`POST /{version}/{page_id}/messages`) and its webhooks: messages,
`delivery` and `read` watermarks. Instagram Messaging speaks the same shape (instagram.py).

Account configuration: `page_id`, `access_token`, `app_secret`, `verify_token`, `base_url`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx

from chat4all.connectors import meta
from chat4all.connectors.http import post_json
from chat4all.domain.status import DeliveryStatus
from chat4all.ports.connectors import (
    Capabilities,
    ChannelAccount,
    InboundMessage,
    OutboundMessage,
    SendError,
    SendResult,
    StatusUpdate,
    WebhookBatch,
    WebhookMalformed,
)

MB = 1024 * 1024
ATTACHMENT_TYPES = {"image": "image", "video": "video", "audio": "audio", "document": "file"}


class MessengerConnector:
    channel_type: ClassVar[str] = "messenger"
    capabilities: ClassVar[Capabilities] = Capabilities(
        delivery_receipts=True,
        read_receipts=True,
        text_limit=2000,
        file_limits={"image": 25 * MB, "video": 25 * MB, "audio": 25 * MB, "document": 25 * MB},
        window_hours=24,
    )
    webhook_object: ClassVar[str] = "page"
    default_base: ClassVar[str] = "https://graph.facebook.com"
    account_node: ClassVar[str] = "page_id"

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def send(self, account: ChannelAccount, message: OutboundMessage) -> SendResult:
        content: dict[str, Any]
        if message.file_url:
            kind = ATTACHMENT_TYPES.get(message.file_kind or "document", "file")
            content = {"attachment": {"type": kind, "payload": {"url": message.file_url}}}
        else:
            content = {"text": message.text or ""}
        body = {
            "recipient": {"id": message.to},
            "messaging_type": "RESPONSE",
            "message": content,
        }
        url = meta.graph_url(account, self.default_base, account.required(self.account_node))
        token = account.required("access_token")
        answer = await post_json(
            self._http, url, body, meta.read_error, {"authorization": f"Bearer {token}"}
        )
        if not isinstance(answer, dict) or not answer.get("message_id"):
            raise SendError("the answer has no message_id", retryable=False)
        return SendResult(str(answer["message_id"]))

    def verify_handshake(self, account: ChannelAccount, query: Mapping[str, str]) -> str:
        return meta.verify_handshake(account, query)

    def verify_webhook(
        self, account: ChannelAccount, body: bytes, headers: Mapping[str, str]
    ) -> None:
        meta.verify_signature(account, body, headers)

    def parse_webhook(self, account: ChannelAccount, body: bytes) -> WebhookBatch:
        doc = meta.load(body, self.webhook_object)
        messages: list[InboundMessage] = []
        statuses: list[StatusUpdate] = []
        try:
            for entry in doc["entry"]:
                for event in entry.get("messaging", []):
                    _read_event(event, messages, statuses)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise WebhookMalformed(f"unexpected {self.channel_type} payload: {e!r}") from e
        return WebhookBatch(tuple(messages), tuple(statuses))


def _read_event(
    event: dict[str, Any], messages: list[InboundMessage], statuses: list[StatusUpdate]
) -> None:
    sender = str(event["sender"]["id"])
    ts = int(event["timestamp"])
    if "message" in event:
        m = event["message"]
        if m.get("is_echo"):
            return  # our own page's message coming back
        attachments = tuple(
            {"type": a.get("type"), **(a.get("payload") or {})} for a in m.get("attachments", [])
        )
        messages.append(
            InboundMessage(
                platform_message_id=str(m["mid"]),
                sender_id=sender,
                sender_name=None,
                text=m.get("text"),
                timestamp=_ms(ts),
                order_key=ts,
                attachments=attachments,
            )
        )
    elif "delivery" in event:
        d = event["delivery"]
        watermark = d.get("watermark")
        statuses.append(
            StatusUpdate(
                contact_id=sender,
                status=DeliveryStatus.DELIVERED,
                at=_ms(int(watermark) if watermark else ts),
                platform_message_ids=tuple(str(mid) for mid in d.get("mids") or ()),
                watermark=watermark is not None,
            )
        )
    elif "read" in event:
        r = event["read"]
        watermark = r.get("watermark")
        mid = r.get("mid")  # Instagram's `messaging_seen` names one message
        statuses.append(
            StatusUpdate(
                contact_id=sender,
                status=DeliveryStatus.READ,
                at=_ms(int(watermark) if watermark else ts),
                platform_message_ids=(str(mid),) if mid else (),
                watermark=watermark is not None,
            )
        )


def _ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)
