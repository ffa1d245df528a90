"""Telegram Bot API: `POST /bot{token}/sendMessage` (and sendPhoto, sendDocument, ...), and
updates by webhook with the `X-Telegram-Bot-Api-Secret-Token` header.

Bots get no delivered or read receipts: a Telegram delivery ends at `sent`.
Account configuration: `bot_token`, `secret_token`, `base_url` (default https://api.telegram.org).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
import orjson

from chat4all.connectors.http import post_json, retry_after_header, transient_status
from chat4all.ports.connectors import (
    Capabilities,
    ChannelAccount,
    InboundMessage,
    OutboundMessage,
    SendError,
    SendResult,
    WebhookBatch,
    WebhookMalformed,
    WebhookRejected,
)

MB = 1024 * 1024
# Sent by URL, Telegram fetches photos up to 5 MB and other files up to 20 MB.
SEND_METHODS = {
    "image": ("sendPhoto", "photo"),
    "video": ("sendVideo", "video"),
    "audio": ("sendAudio", "audio"),
    "document": ("sendDocument", "document"),
}


class TelegramConnector:
    channel_type: ClassVar[str] = "telegram"
    capabilities: ClassVar[Capabilities] = Capabilities(
        delivery_receipts=False,
        read_receipts=False,
        text_limit=4096,
        file_limits={"image": 5 * MB, "video": 20 * MB, "audio": 20 * MB, "document": 20 * MB},
        window_hours=None,
        malformed_webhook_status=200,
    )

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def send(self, account: ChannelAccount, message: OutboundMessage) -> SendResult:
        base = str(account.setting("base_url") or "https://api.telegram.org").rstrip("/")
        token = account.required("bot_token")
        body: dict[str, Any] = {"chat_id": message.to}
        if message.file_url:
            method, field = SEND_METHODS.get(
                message.file_kind or "document", SEND_METHODS["document"]
            )
            body[field] = message.file_url
            if message.text:
                body["caption"] = message.text
        else:
            method = "sendMessage"
            body["text"] = message.text or ""
        answer = await post_json(self._http, f"{base}/bot{token}/{method}", body, _read_error)
        try:
            result = answer["result"]
            return SendResult(f"{result['chat']['id']}:{result['message_id']}")
        except (KeyError, TypeError) as e:
            raise SendError("the answer has no result.message_id", retryable=False) from e

    def verify_handshake(self, account: ChannelAccount, query: Mapping[str, str]) -> str:
        raise WebhookRejected("Telegram has no webhook handshake; use setWebhook", 405)

    def verify_webhook(
        self, account: ChannelAccount, body: bytes, headers: Mapping[str, str]
    ) -> None:
        expected = str(account.setting("secret_token") or "")
        if not expected:
            raise WebhookRejected("the account has no secret_token to check webhooks with")
        given = headers.get("x-telegram-bot-api-secret-token", "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise WebhookRejected("X-Telegram-Bot-Api-Secret-Token does not match", 401)

    def parse_webhook(self, account: ChannelAccount, body: bytes) -> WebhookBatch:
        try:
            update = orjson.loads(body)
            update_id = int(update["update_id"])
            message = update.get("message")
            if message is None:  # edits, callbacks, reactions: not messages of a conversation
                return WebhookBatch()
            chat_id = str(message["chat"]["id"])
            sender = message.get("from") or {}
            attachments: tuple[dict[str, Any], ...] = ()
            for kind in ("document", "video", "audio"):
                if kind in message:
                    attachments = ({"type": kind, **message[kind]},)
            if "photo" in message:
                attachments = ({"type": "image", **message["photo"][-1]},)
            text = message.get("text") or message.get("caption")
            return WebhookBatch(
                messages=(
                    InboundMessage(
                        platform_message_id=f"{chat_id}:{message['message_id']}",
                        sender_id=chat_id,
                        sender_name=sender.get("username") or sender.get("first_name"),
                        text=text,
                        timestamp=datetime.fromtimestamp(int(message["date"]), UTC),
                        order_key=update_id,
                        attachments=attachments,
                    ),
                )
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError) as e:
            raise WebhookMalformed(f"not a Telegram update: {e!r}") from e


def _read_error(status: int, body: Any, headers: Mapping[str, str]) -> SendError:
    if not isinstance(body, dict):
        return SendError(f"HTTP {status}", retryable=transient_status(status), code=str(status))
    parameters = body.get("parameters") or {}
    retry_after = parameters.get("retry_after")
    description = str(body.get("description") or f"HTTP {status}")
    return SendError(
        description,
        retryable=transient_status(int(body.get("error_code") or status)),
        retry_after=float(retry_after) if retry_after is not None else retry_after_header(headers),
        code=str(body.get("error_code") or status),
    )
