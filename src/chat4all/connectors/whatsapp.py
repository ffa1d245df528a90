"""WhatsApp Cloud API: `POST /{version}/{phone_number_id}/messages`, `statuses` webhooks.

Account configuration: `phone_number_id`, `access_token`, `app_secret`, `verify_token`, and
`base_url` (default https://graph.facebook.com) so that a fake can stand in.
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
STATUSES = {
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "failed": DeliveryStatus.FAILED,
}
MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")


class WhatsAppConnector:
    channel_type: ClassVar[str] = "whatsapp"
    capabilities: ClassVar[Capabilities] = Capabilities(
        delivery_receipts=True,
        read_receipts=True,
        text_limit=4096,
        file_limits={"image": 5 * MB, "video": 16 * MB, "audio": 16 * MB, "document": 100 * MB},
        window_hours=24,
    )

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def send(self, account: ChannelAccount, message: OutboundMessage) -> SendResult:
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": message.to,
        }
        if message.file_url:
            kind = message.file_kind or "document"
            media: dict[str, Any] = {"link": message.file_url}
            if message.text:
                media["caption"] = message.text
            if kind == "document" and message.filename:
                media["filename"] = message.filename
            body |= {"type": kind, kind: media}
        else:
            body |= {"type": "text", "text": {"preview_url": False, "body": message.text or ""}}
        if message.reference:
            body["biz_opaque_callback_data"] = message.reference
        url = meta.graph_url(
            account, "https://graph.facebook.com", account.required("phone_number_id")
        )
        token = account.required("access_token")
        answer = await post_json(
            self._http, url, body, meta.read_error, {"authorization": f"Bearer {token}"}
        )
        try:
            return SendResult(str(answer["messages"][0]["id"]))
        except (KeyError, IndexError, TypeError) as e:
            raise SendError("the answer has no messages[0].id", retryable=False) from e

    def verify_handshake(self, account: ChannelAccount, query: Mapping[str, str]) -> str:
        return meta.verify_handshake(account, query)

    def verify_webhook(
        self, account: ChannelAccount, body: bytes, headers: Mapping[str, str]
    ) -> None:
        meta.verify_signature(account, body, headers)

    def parse_webhook(self, account: ChannelAccount, body: bytes) -> WebhookBatch:
        doc = meta.load(body, "whatsapp_business_account")
        messages: list[InboundMessage] = []
        statuses: list[StatusUpdate | None] = []
        try:
            for entry in doc["entry"]:
                for change in entry.get("changes", []):
                    value = change.get("value") or {}
                    names = {
                        c.get("wa_id"): (c.get("profile") or {}).get("name")
                        for c in value.get("contacts", [])
                    }
                    messages += [_message(m, names) for m in value.get("messages", [])]
                    statuses += [_status(s) for s in value.get("statuses", [])]
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise WebhookMalformed(f"unexpected WhatsApp payload: {e!r}") from e
        return WebhookBatch(tuple(messages), tuple(s for s in statuses if s is not None))


def _message(m: dict[str, Any], names: dict[Any, Any]) -> InboundMessage:
    ts = int(m["timestamp"])
    kind = m.get("type", "text")
    text = (m.get("text") or {}).get("body")
    attachments: tuple[dict[str, Any], ...] = ()
    if kind in MEDIA_TYPES:
        media = m.get(kind) or {}
        text = media.get("caption")
        attachments = ({"type": kind, **media},)
    elif kind != "text":
        text = text or f"[{kind}]"
    return InboundMessage(
        platform_message_id=str(m["id"]),
        sender_id=str(m["from"]),
        sender_name=names.get(m["from"]),
        text=text,
        timestamp=datetime.fromtimestamp(ts, UTC),
        order_key=ts,
        attachments=attachments,
    )


def _status(s: dict[str, Any]) -> StatusUpdate | None:
    status = STATUSES.get(s.get("status", ""))
    if status is None:
        return None
    errors = s.get("errors") or []
    error = None
    if errors:
        first = errors[0]
        error = f"({first.get('code')}) {first.get('title') or first.get('message') or ''}"
    return StatusUpdate(
        contact_id=str(s.get("recipient_id", "")),
        status=status,
        at=datetime.fromtimestamp(int(s["timestamp"]), UTC),
        platform_message_ids=(str(s["id"]),),
        error=error,
    )
