"""The connectors' webhook side on the platforms' own payloads: signatures, the handshake,
parsing, and how platform errors are read. Sending is tested end to end on the fakes."""

import hashlib
import hmac
import json

import pytest

from chat4all.connectors import meta
from chat4all.connectors.instagram import InstagramConnector
from chat4all.connectors.messenger import MessengerConnector
from chat4all.connectors.registry import discover
from chat4all.connectors.telegram import TelegramConnector, _read_error
from chat4all.connectors.whatsapp import WhatsAppConnector
from chat4all.domain.status import DeliveryStatus
from chat4all.ports.connectors import ChannelAccount, WebhookMalformed, WebhookRejected

SECRET = "app-secret"
META = {"app_secret": SECRET, "verify_token": "vt"}


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {
        "x-hub-signature-256": "sha256="
        + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    }


def account(channel: str, **config: str) -> ChannelAccount:
    return ChannelAccount("acc", channel, config)


def test_builtin_connectors_are_entry_points():
    found = discover()
    assert {"whatsapp", "telegram", "messenger", "instagram"} <= set(found)
    assert found["whatsapp"] is WhatsAppConnector


def test_meta_handshake():
    wa = WhatsAppConnector(None)  # type: ignore[arg-type]
    acc = account("whatsapp", **META)
    query = {"hub.mode": "subscribe", "hub.verify_token": "vt", "hub.challenge": "1158201444"}
    assert wa.verify_handshake(acc, query) == "1158201444"
    with pytest.raises(WebhookRejected) as e:
        wa.verify_handshake(acc, query | {"hub.verify_token": "nope"})
    assert e.value.status == 403


def test_meta_signature_is_over_the_raw_bytes():
    wa = WhatsAppConnector(None)  # type: ignore[arg-type]
    acc = account("whatsapp", **META)
    body = b'{"object":"whatsapp_business_account","entry":[],"n":"\\u00e9"}'
    wa.verify_webhook(acc, body, signed(body))
    reserialised = json.dumps(json.loads(body), ensure_ascii=False).encode()
    with pytest.raises(WebhookRejected):
        wa.verify_webhook(acc, reserialised, signed(body))
    with pytest.raises(WebhookRejected):
        wa.verify_webhook(acc, body, signed(body, "other"))
    with pytest.raises(WebhookRejected) as e:
        wa.verify_webhook(acc, body, {})
    assert e.value.status == 401


def test_whatsapp_messages_and_statuses():
    body = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "WABA",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "contacts": [{"profile": {"name": "Ana"}, "wa_id": "1555"}],
                                "messages": [
                                    {
                                        "from": "1555",
                                        "id": "wamid.A",
                                        "timestamp": "1700000000",
                                        "type": "text",
                                        "text": {"body": "hi"},
                                    }
                                ],
                            },
                        },
                        {
                            "field": "messages",
                            "value": {
                                "statuses": [
                                    {
                                        "id": "wamid.X",
                                        "status": "read",
                                        "timestamp": "1700000005",
                                        "recipient_id": "1555",
                                    },
                                    {
                                        "id": "wamid.Y",
                                        "status": "failed",
                                        "timestamp": "1700000006",
                                        "recipient_id": "1555",
                                        "errors": [
                                            {"code": 131026, "title": "Message undeliverable"}
                                        ],
                                    },
                                ]
                            },
                        },
                    ],
                }
            ],
        }
    ).encode()
    batch = WhatsAppConnector(None).parse_webhook(account("whatsapp"), body)  # type: ignore[arg-type]
    (m,) = batch.messages
    assert (m.platform_message_id, m.sender_id, m.sender_name, m.text) == (
        "wamid.A",
        "1555",
        "Ana",
        "hi",
    )
    read, failed = batch.statuses
    assert read.status is DeliveryStatus.READ and read.platform_message_ids == ("wamid.X",)
    assert failed.status is DeliveryStatus.FAILED and "131026" in (failed.error or "")


def test_messenger_watermarks_and_echoes():
    body = json.dumps(
        {
            "object": "page",
            "entry": [
                {
                    "id": "PAGE",
                    "time": 1,
                    "messaging": [
                        {
                            "sender": {"id": "P1"},
                            "recipient": {"id": "PAGE"},
                            "timestamp": 1700000000000,
                            "message": {"mid": "m1", "text": "yo"},
                        },
                        {
                            "sender": {"id": "PAGE"},
                            "recipient": {"id": "P1"},
                            "timestamp": 1700000000001,
                            "message": {"mid": "m2", "text": "echo", "is_echo": True},
                        },
                        {
                            "sender": {"id": "P1"},
                            "recipient": {"id": "PAGE"},
                            "timestamp": 1700000000002,
                            "delivery": {"mids": ["x"], "watermark": 1700000000001},
                        },
                        {
                            "sender": {"id": "P1"},
                            "recipient": {"id": "PAGE"},
                            "timestamp": 1700000000003,
                            "read": {"watermark": 1700000000002},
                        },
                    ],
                }
            ],
        }
    ).encode()
    batch = MessengerConnector(None).parse_webhook(account("messenger"), body)  # type: ignore[arg-type]
    assert [m.platform_message_id for m in batch.messages] == ["m1"]
    delivered, read = batch.statuses
    assert delivered.status is DeliveryStatus.DELIVERED and delivered.watermark
    assert read.status is DeliveryStatus.READ and read.watermark and read.contact_id == "P1"


def test_instagram_expects_its_own_object():
    body = json.dumps({"object": "page", "entry": []}).encode()
    with pytest.raises(WebhookMalformed):
        InstagramConnector(None).parse_webhook(account("instagram"), body)  # type: ignore[arg-type]
    assert not InstagramConnector.capabilities.delivery_receipts


def test_telegram_secret_token_and_update():
    tg = TelegramConnector(None)  # type: ignore[arg-type]
    acc = account("telegram", secret_token="s3cret")
    body = json.dumps(
        {
            "update_id": 42,
            "message": {
                "message_id": 7,
                "from": {"id": 9, "first_name": "Bo"},
                "chat": {"id": 9, "type": "private"},
                "date": 1700000000,
                "text": "hey",
            },
        }
    ).encode()
    tg.verify_webhook(acc, body, {"x-telegram-bot-api-secret-token": "s3cret"})
    with pytest.raises(WebhookRejected):
        tg.verify_webhook(acc, body, {"x-telegram-bot-api-secret-token": "guess"})
    (m,) = tg.parse_webhook(acc, body).messages
    assert (m.platform_message_id, m.sender_id, m.order_key, m.text) == ("9:7", "9", 42, "hey")
    with pytest.raises(WebhookMalformed):
        tg.parse_webhook(acc, b"{not json")
    assert TelegramConnector.capabilities.malformed_webhook_status == 200
    assert not TelegramConnector.capabilities.delivery_receipts


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (429, 130429, True),
        (400, 131056, True),
        (400, 131047, False),
        (400, 100, False),
        (500, 1, True),
        (401, 190, False),
    ],
)
def test_meta_errors_are_read_by_code(status, code, retryable):
    error = meta.read_error(status, {"error": {"message": "m", "code": code}}, {"retry-after": "3"})
    assert error.retryable is retryable
    assert error.code == str(code)
    assert error.retry_after == 3.0


def test_telegram_retry_after():
    error = _read_error(
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 5",
            "parameters": {"retry_after": 5},
        },
        {},
    )
    assert error.retryable and error.retry_after == 5.0
    assert not _read_error(
        403,
        {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"},
        {},
    ).retryable
