"""A fake of the Messenger Send API, and (with `INSTAGRAM`) of Instagram Messaging, which speaks
the same shapes: `recipient/message/messaging_type` sends answered with `{recipient_id,
message_id}`, and signed `entry[].messaging[]` webhooks for messages, deliveries and reads."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal

from fastapi import FastAPI, Request
from pydantic import model_validator

from fakes.common import CONTROL_PREFIX, ControlError, Json, build_app, deliveries_json, read_params
from fakes.graph import (
    GraphConfig,
    GraphError,
    GraphFake,
    graph_control_router,
    install_graph_errors,
)
from fakes.inbound import InboundEvent, control_body, inbound_router, parse_control

ATTACHMENT_TYPES = ("image", "audio", "video", "file", "template")
MESSAGING_TYPES = ("RESPONSE", "UPDATE", "MESSAGE_TAG")
SENDER_ACTIONS = ("mark_seen", "typing_on", "typing_off", "react", "unreact")


@dataclass(frozen=True)
class MetaMessaging:
    """What differs between Messenger and Instagram."""

    name: str
    webhook_object: str
    text_limit: int  # texts must be shorter than this
    has_delivery: bool  # Instagram sends no delivery events


MESSENGER = MetaMessaging("Messenger", "page", 2000, has_delivery=True)
INSTAGRAM = MetaMessaging("Instagram", "instagram", 1000, has_delivery=False)


@dataclass
class MessengerConfig(GraphConfig):
    page_id: str = "107208964876522"  # the Instagram professional account id for Instagram


@dataclass
class Sent:
    mid: str
    recipient_id: str
    timestamp: int  # ms


class MessengerFake(GraphFake):
    config: MessengerConfig

    def __init__(self, platform: MetaMessaging, config: MessengerConfig) -> None:
        super().__init__(config)
        self.platform = platform
        self.sent: list[Sent] = []

    def reset(self) -> None:
        super().reset()
        self.sent.clear()

    def now_ms(self) -> int:
        return int(self.config.clock() * 1000)

    def envelope(self, event: Json, timestamp: int) -> Json:
        return {
            "object": self.platform.webhook_object,
            "entry": [{"id": self.config.page_id, "time": timestamp, "messaging": [event]}],
        }

    def from_contact(self, contact_id: str, timestamp: int, **event: object) -> Json:
        return {
            "sender": {"id": contact_id},
            "recipient": {"id": self.config.page_id},
            "timestamp": timestamp,
            **event,
        }


class Inbound(InboundEvent):
    sender_id: str
    text: str | None = None
    attachment: dict[str, str] | None = None  # {"type": "image", "url": ...}
    mid: str | None = None
    timestamp: int | None = None  # ms
    reply_to: str | None = None

    @model_validator(mode="after")
    def _has_content(self) -> Inbound:
        if not self.text and self.attachment is None:
            raise ValueError("an inbound message needs `text` or `attachment`")
        return self


class Status(InboundEvent):
    recipient_id: str
    status: Literal["delivered", "read"]
    watermark: int | None = None  # ms; default: the last message sent to the recipient
    mids: list[str] | None = None


def new_mid() -> str:
    return "m_" + secrets.token_urlsafe(32)


def create_platform_app(platform: MetaMessaging, config: MessengerConfig | None) -> FastAPI:
    fake = MessengerFake(platform, config or MessengerConfig())
    app = build_app(fake, f"Fake {platform.name} API")
    app.state.fake = fake
    install_graph_errors(app, fake)
    app.include_router(graph_control_router(fake))

    def build_inbound(event: Inbound, index: int) -> tuple[Json, str]:
        mid = event.mid or new_mid()
        timestamp = event.timestamp or fake.now_ms() + index
        message: Json = {"mid": mid}
        if event.text:
            message["text"] = event.text
        if event.attachment is not None:
            kind = event.attachment.get("type", "image")
            message["attachments"] = [
                {"type": kind, "payload": {"url": event.attachment.get("url", "")}}
            ]
        if event.reply_to:
            message["reply_to"] = {"mid": event.reply_to}
        payload = fake.envelope(
            fake.from_contact(event.sender_id, timestamp, message=message), timestamp
        )
        return payload, mid

    app.include_router(inbound_router(fake, Inbound, build_inbound))

    @app.post(f"{CONTROL_PREFIX}/status")
    async def emit_status(request: Request) -> Json:
        order = parse_control(Status, await control_body(request))
        if order.status == "delivered" and not platform.has_delivery:
            raise ControlError(422, f"{platform.name} has no delivery events, only reads")
        sent = [s for s in fake.sent if s.recipient_id == order.recipient_id]
        if not sent and order.watermark is None:
            raise ControlError(404, f"no message was sent to {order.recipient_id}")
        watermark = order.watermark or max(s.timestamp for s in sent)
        now = fake.now_ms()
        if order.status == "delivered":
            mids = order.mids or [s.mid for s in sent if s.timestamp <= watermark]
            receipt: Json = {"delivery": {"mids": mids, "watermark": watermark}}
        elif platform.has_delivery:
            receipt = {"read": {"watermark": watermark}}
        else:  # Instagram's messaging_seen names the last message seen
            seen = [s.mid for s in sent if s.timestamp <= watermark]
            receipt = {"read": {"mid": seen[-1] if seen else order.mids and order.mids[-1]}}
        event = fake.from_contact(order.recipient_id, now, **receipt)
        attempts = await fake.deliver([fake.envelope(event, now)], duplicate=order.duplicate)
        return {"deliveries": deliveries_json(attempts)}

    async def send(page_id: str, request: Request) -> Json:
        fake.check_token(request)
        try:
            body = await read_params(request)
        except ValueError as error:
            raise GraphError(
                400, 100, details=f"The request body is not valid JSON: {error}"
            ) from error
        recipient = body.get("recipient")
        recipient_id = recipient.get("id") if isinstance(recipient, dict) else None
        if not recipient_id:
            raise GraphError(400, 100, "(#100) The parameter recipient is required")
        recipient_id = str(recipient_id)
        action = body.get("sender_action")
        if action is not None:
            if str(action).lower() not in SENDER_ACTIONS:
                raise GraphError(
                    400,
                    100,
                    "(#100) Param sender_action must be one of " + ", ".join(SENDER_ACTIONS),
                )
            return {"recipient_id": recipient_id}
        messaging_type = body.get("messaging_type", "RESPONSE")
        if messaging_type not in MESSAGING_TYPES:
            raise GraphError(
                400, 100, "(#100) Param messaging_type must be one of " + ", ".join(MESSAGING_TYPES)
            )
        _check_message(platform, body.get("message"))
        sent = Sent(new_mid(), recipient_id, fake.now_ms())
        fake.sent.append(sent)
        return {"recipient_id": recipient_id, "message_id": sent.mid}

    @app.post("/{version}/me/messages")
    async def send_as_me(version: str, request: Request) -> Json:
        return await send(fake.config.page_id, request)

    @app.post("/{version}/{page_id}/messages")
    async def send_as_page(version: str, page_id: str, request: Request) -> Json:
        return await send(page_id, request)

    return app


def _check_message(platform: MetaMessaging, message: object) -> None:
    if not isinstance(message, dict):
        raise GraphError(400, 100, "(#100) The parameter message is required")
    text = message.get("text")
    attachment = message.get("attachment")
    if text is None and attachment is None:
        raise GraphError(400, 100, "(#100) Must send either message text or an attachment")
    if text is not None and (not isinstance(text, str) or len(text) >= platform.text_limit):
        raise GraphError(
            400,
            100,
            f"(#100) Length of param message[text] must be less than {platform.text_limit}",
        )
    if attachment is not None:
        kind = attachment.get("type") if isinstance(attachment, dict) else None
        payload = attachment.get("payload") if isinstance(attachment, dict) else None
        if kind not in ATTACHMENT_TYPES or not isinstance(payload, dict):
            raise GraphError(
                400, 100, "(#100) Param message[attachment] must have a type and a payload"
            )


def create_app(config: MessengerConfig | None = None) -> FastAPI:
    """The Messenger Send API fake; `app.state.fake` is its state, for in-process tests."""
    return create_platform_app(MESSENGER, config)
