"""A fake of the WhatsApp Cloud API (Graph API): send, mark read, media upload and download,
signed `whatsapp_business_account` webhooks for inbound messages and statuses."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import FastAPI, Request, Response
from pydantic import Field, model_validator
from starlette.datastructures import UploadFile

from fakes.common import (
    CONTROL_PREFIX,
    ControlError,
    Json,
    build_app,
    deliveries_json,
    read_params,
)
from fakes.graph import (
    GraphConfig,
    GraphError,
    GraphFake,
    graph_control_router,
    install_graph_errors,
)
from fakes.inbound import InboundEvent, control_body, inbound_router, parse_control

TEXT_LIMIT = 4096
MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")
# Types the fake accepts as sent without checking their content.
OTHER_TYPES = ("template", "reaction", "location", "contacts", "interactive")
WINDOW_CLOSED = (
    "Message failed to send because more than 24 hours have passed since the customer last "
    "replied to this number."
)


@dataclass
class WhatsAppConfig(GraphConfig):
    waba_id: str = "102290129340398"
    phone_number_id: str = "106540352242922"
    display_phone_number: str = "15550783881"


@dataclass
class SentMessage:
    to: str
    phone_number_id: str
    callback_data: str | None


@dataclass
class Media:
    content: bytes
    mime_type: str
    filename: str | None = None
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        self.sha256 = hashlib.sha256(self.content).hexdigest()


class WhatsAppFake(GraphFake):
    config: WhatsAppConfig
    product = "whatsapp"

    def __init__(self, config: WhatsAppConfig) -> None:
        super().__init__(config)
        self.sent: dict[str, SentMessage] = {}
        self.media: dict[str, Media] = {}
        self.closed_windows: set[str] = set()
        self._background: set[asyncio.Task[Any]] = set()

    def reset(self) -> None:
        super().reset()
        self.sent.clear()
        self.media.clear()
        self.closed_windows.clear()

    def metadata(self, phone_number_id: str | None = None) -> Json:
        return {
            "display_phone_number": self.config.display_phone_number,
            "phone_number_id": phone_number_id or self.config.phone_number_id,
        }

    def envelope(self, value: Json) -> Json:
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": self.config.waba_id,
                    "changes": [
                        {"field": "messages", "value": {"messaging_product": "whatsapp", **value}}
                    ],
                }
            ],
        }

    def status_payload(
        self, message_id: str, status: str, timestamp: int, error_code: int | None = None
    ) -> Json:
        sent = self.sent[message_id]
        entry: Json = {
            "id": message_id,
            "status": status,
            "timestamp": str(timestamp),
            "recipient_id": sent.to,
            "recipient_user_id": bsuid(sent.to),
        }
        if sent.callback_data is not None:
            entry["biz_opaque_callback_data"] = sent.callback_data
        if error_code is not None:
            message = WINDOW_CLOSED if error_code == 131047 else GraphError(400, error_code).message
            entry["errors"] = [
                {
                    "code": error_code,
                    "title": message,
                    "message": message,
                    "error_data": {"details": message},
                    "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
                }
            ]
        value = {
            "metadata": self.metadata(sent.phone_number_id),
            "contacts": [contact(sent.to)],
            "statuses": [entry],
        }
        return self.envelope(value)

    def in_background(self, payload: Json) -> None:
        """A webhook that follows an API answer, as the platform sends it: after, not within."""
        if self.config.webhook_url is None:
            return
        task = asyncio.create_task(self.deliver([payload]))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Waits for the webhooks sent in the background (tests use it before asserting)."""
        await asyncio.gather(*self._background)

    def store_media(self, media: Media) -> str:
        media_id = str(secrets.randbelow(10**15) + 10**15)
        self.media[media_id] = media
        return media_id


class Inbound(InboundEvent):
    """A contact's message: text, or a media file the fake stores for the connector to fetch."""

    from_: str = Field(alias="from", min_length=1)
    user_id: str | None = None  # the contact's BSUID; derived from `from` when not given
    name: str = "Contact"
    type: Literal["text", "image", "video", "audio", "document"] = "text"
    text: str | None = None
    caption: str | None = None
    filename: str | None = None
    mime_type: str = "application/octet-stream"
    content_base64: str | None = None
    id: str | None = None
    timestamp: int | None = None
    context_id: str | None = None
    phone_number_id: str | None = None

    @model_validator(mode="after")
    def _text_has_body(self) -> Inbound:
        if self.type == "text" and not self.text:
            raise ValueError("a text message needs `text`")
        return self


class Status(InboundEvent):
    message_id: str
    status: Literal["sent", "delivered", "read", "failed"]
    error_code: int | None = None
    timestamp: int | None = None


class Window(InboundEvent):
    wa_id: str
    open: bool


def bsuid(wa_id: str) -> str:
    """A stable business-scoped user id for a phone number (the `user_id` Meta adds since 2026)."""
    digits = int(hashlib.sha256(wa_id.encode()).hexdigest(), 16) % 10**19
    return f"US.{digits}"


def contact(wa_id: str, user_id: str | None = None, name: str | None = None) -> Json:
    item: Json = {"wa_id": wa_id, "user_id": user_id or bsuid(wa_id)}
    if name is not None:
        item["profile"] = {"name": name}
    return item


def new_wamid() -> str:
    return "wamid." + base64.b64encode(secrets.token_bytes(30)).decode()


def create_app(config: WhatsAppConfig | None = None) -> FastAPI:
    """The WhatsApp Cloud API fake; `app.state.fake` is its state, for in-process tests."""
    fake = WhatsAppFake(config or WhatsAppConfig())
    app = build_app(fake, "Fake WhatsApp Cloud API")
    app.state.fake = fake
    install_graph_errors(app, fake)
    app.include_router(graph_control_router(fake))

    def build_inbound(event: Inbound, index: int) -> tuple[Json, str]:
        message_id = event.id or new_wamid()
        timestamp = event.timestamp or int(fake.config.clock()) + index
        message: Json = {
            "from": event.from_,
            "id": message_id,
            "timestamp": str(timestamp),
            "type": event.type,
        }
        if event.type == "text":
            message["text"] = {"body": event.text}
        else:
            content = base64.b64decode(event.content_base64 or "") or b"fake media"
            media = Media(content, event.mime_type, event.filename)
            item: Json = {
                "mime_type": media.mime_type,
                "sha256": media.sha256,
                "id": fake.store_media(media),
            }
            if event.caption is not None:
                item["caption"] = event.caption
            if event.type == "document" and event.filename is not None:
                item["filename"] = event.filename
            message[event.type] = item
        if event.context_id is not None:
            message["context"] = {"from": fake.config.display_phone_number, "id": event.context_id}
        fake.closed_windows.discard(event.from_)  # a message from the contact opens the window
        value = {
            "metadata": fake.metadata(event.phone_number_id),
            "contacts": [contact(event.from_, event.user_id, event.name)],
            "messages": [message],
        }
        return fake.envelope(value), message_id

    app.include_router(inbound_router(fake, Inbound, build_inbound))

    @app.post(f"{CONTROL_PREFIX}/status")
    async def emit_status(request: Request) -> Json:
        order = parse_control(Status, await control_body(request))
        if order.message_id not in fake.sent:
            raise ControlError(404, f"no message {order.message_id} was sent through this fake")
        timestamp = order.timestamp or int(fake.config.clock())
        payload = fake.status_payload(order.message_id, order.status, timestamp, order.error_code)
        attempts = await fake.deliver([payload], duplicate=order.duplicate)
        return {"deliveries": deliveries_json(attempts)}

    @app.post(f"{CONTROL_PREFIX}/window")
    async def window(request: Request) -> Json:
        order = parse_control(Window, await control_body(request))
        if order.open:
            fake.closed_windows.discard(order.wa_id)
        else:
            fake.closed_windows.add(order.wa_id)
        return {"wa_id": order.wa_id, "open": order.open}

    @app.post("/{version}/{phone_number_id}/messages")
    async def send(version: str, phone_number_id: str, request: Request) -> Json:
        fake.check_token(request)
        body = await _json_params(request)
        if body.get("messaging_product") != "whatsapp":
            raise GraphError(400, 100, details="Param messaging_product must be 'whatsapp'")
        if body.get("status") == "read":
            if not isinstance(body.get("message_id"), str):
                raise GraphError(400, 100, details="Param message_id is required")
            return {"success": True}
        to = str(body.get("to") or "").lstrip("+")
        if not to.isdigit():
            raise GraphError(400, 100, details="Param to must be a phone number")
        _check_content(fake, body)
        message_id = new_wamid()
        callback = body.get("biz_opaque_callback_data")
        fake.sent[message_id] = SentMessage(to, phone_number_id, callback)
        if to in fake.closed_windows and body.get("type") != "template":
            # Meta accepts the call, then reports the closed window in a `failed` status.
            now = int(fake.config.clock())
            fake.in_background(fake.status_payload(message_id, "failed", now, 131047))
        return {
            "messaging_product": "whatsapp",
            "contacts": [{"input": str(body["to"]), "wa_id": to}],
            "messages": [{"id": message_id}],
        }

    @app.post("/{version}/{phone_number_id}/media")
    async def upload(version: str, phone_number_id: str, request: Request) -> Json:
        fake.check_token(request)
        params = await read_params(request)
        upload = params.get("file")
        if not isinstance(upload, UploadFile):
            raise GraphError(400, 100, details="Param file must be a file upload")
        if params.get("messaging_product") != "whatsapp":
            raise GraphError(400, 100, details="Param messaging_product must be 'whatsapp'")
        mime = str(params.get("type") or upload.content_type or "application/octet-stream")
        return {"id": fake.store_media(Media(await upload.read(), mime, upload.filename))}

    # Before `/{version}/{media_id}`, which would match it too.
    @app.get("/_media/{media_id}", name="download")
    async def download(media_id: str, request: Request) -> Response:
        fake.check_token(request)
        media = _media(fake, media_id)
        return Response(media.content, media_type=media.mime_type)

    @app.get("/{version}/{media_id}")
    async def media_url(version: str, media_id: str, request: Request) -> Json:
        fake.check_token(request)
        media = _media(fake, media_id)
        return {
            "messaging_product": "whatsapp",
            "url": str(request.url_for("download", media_id=media_id)),
            "mime_type": media.mime_type,
            "sha256": media.sha256,
            "file_size": len(media.content),
            "id": media_id,
        }

    return app


async def _json_params(request: Request) -> Json:
    try:
        return await read_params(request)
    except ValueError as error:
        raise GraphError(
            400, 100, details=f"The request body is not valid JSON: {error}"
        ) from error


def _check_content(fake: WhatsAppFake, body: Json) -> None:
    kind = body.get("type", "text")
    if kind == "text":
        text = body.get("text")
        text_body = text.get("body") if isinstance(text, dict) else None
        if not isinstance(text_body, str) or not text_body:
            raise GraphError(400, 100, details="Param text['body'] is required")
        if len(text_body) > TEXT_LIMIT:
            raise GraphError(
                400,
                100,
                details=f"Param text['body'] must be at most {TEXT_LIMIT} characters long.",
            )
    elif kind in MEDIA_TYPES:
        media = body.get(kind)
        if not isinstance(media, dict) or not (media.get("link") or media.get("id")):
            raise GraphError(400, 100, details=f"Param {kind} must have a link or an id")
        if media.get("id") and str(media["id"]) not in fake.media:
            raise GraphError(400, 131053, details=f"Media id {media['id']} is not valid")
    elif kind not in OTHER_TYPES:
        raise GraphError(
            400,
            100,
            details=f"Param type must be one of text, {', '.join(MEDIA_TYPES + OTHER_TYPES)}",
        )


def _media(fake: WhatsAppFake, media_id: str) -> Media:
    media = fake.media.get(media_id)
    if media is None:
        raise GraphError(
            400,
            100,
            f"Unsupported get request. Object with ID '{media_id}' does not exist",
        )
    return media
