"""A fake of the Telegram Bot API: `/bot{token}/{method}` for the methods a connector uses,
`{ok, result}` envelopes and errors, updates pushed to the webhook (with the secret-token header)
or kept for getUpdates, and file downloads."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import mimetypes
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, model_validator
from starlette.datastructures import UploadFile

from fakes.common import (
    CONTROL_PREFIX,
    DeliveryAttempt,
    Failure,
    FakeConfig,
    Json,
    PlatformFake,
    build_app,
    read_params,
)
from fakes.inbound import InboundEvent, control_body, inbound_router, parse_control

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
MAX_LONG_POLL = 50.0
SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
TOKEN = re.compile(r"(\d+):[A-Za-z0-9_-]+")
FILE_METHODS = {
    "sendDocument": "document",
    "sendPhoto": "photo",
    "sendVideo": "video",
    "sendAudio": "audio",
}
DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


@dataclass
class TelegramConfig(FakeConfig):
    bot_token: str | None = None  # None: any well-formed token "<bot id>:<secret>"
    bot_username: str = "chat4all_fake_bot"


class TelegramError(Exception):
    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after


def error_response(error: TelegramError) -> JSONResponse:
    body: Json = {"ok": False, "error_code": error.status, "description": error.description}
    if error.retry_after is not None:
        body["parameters"] = {"retry_after": error.retry_after}
    return JSONResponse(body, status_code=error.status)


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    content: bytes | None  # None when sent by URL: the fake does not fetch it
    file_name: str | None
    mime_type: str | None

    def as_document(self) -> Json:
        item: Json = {"file_id": self.file_id, "file_unique_id": self.file_unique_id}
        if self.file_name:
            item["file_name"] = self.file_name
        if self.mime_type:
            item["mime_type"] = self.mime_type
        if self.content is not None:
            item["file_size"] = len(self.content)
        return item


class TelegramFake(PlatformFake):
    config: TelegramConfig

    def __init__(self, config: TelegramConfig) -> None:
        super().__init__(config)
        self.secret_token: str | None = None
        self.pending: list[Json] = []
        self.update_ids = itertools.count(100_000_001)
        self.message_ids: dict[int | str, itertools.count[int]] = {}
        self.files: dict[str, StoredFile] = {}
        self.last_error: tuple[int, str] | None = None
        self.new_update = asyncio.Event()

    def reset(self) -> None:
        super().reset()
        self.pending.clear()
        self.files.clear()
        self.message_ids.clear()
        self.last_error = None

    def failure_response(self, failure: Failure) -> Response:
        description = failure.message or (
            f"Too Many Requests: retry after {failure.retry_after or 1}"
            if failure.status == 429
            else DESCRIPTIONS.get(failure.status, "Internal Server Error")
        )
        retry_after = failure.retry_after if failure.status == 429 else None
        return error_response(TelegramError(failure.status, description, retry_after))

    def webhook_headers(self, body: bytes) -> dict[str, str]:
        if self.secret_token is None:
            return {}
        return {"X-Telegram-Bot-Api-Secret-Token": self.secret_token}

    def bot_id(self, token: str) -> int:
        # Telegram answers 404 to a malformed token and 401 to a well-formed one it doesn't know.
        match = TOKEN.fullmatch(token)
        if match is None:
            raise TelegramError(404, "Not Found")
        if self.config.bot_token is not None and token != self.config.bot_token:
            raise TelegramError(401, "Unauthorized")
        return int(match.group(1))

    def next_message_id(self, chat_id: int | str) -> int:
        return next(self.message_ids.setdefault(chat_id, itertools.count(1)))

    def store_file(self, content: bytes | None, name: str | None, mime: str | None) -> StoredFile:
        file_id = "BQAC" + secrets.token_urlsafe(24)
        stored = StoredFile(
            file_id,
            "AgAD" + secrets.token_urlsafe(8),
            f"documents/file_{len(self.files)}{mimetypes.guess_extension(mime or '') or ''}",
            content,
            name,
            mime,
        )
        self.files[file_id] = stored
        return stored

    async def push(self, payloads: list[Json], duplicate: bool) -> list[DeliveryAttempt]:
        """To the webhook when one is set, else kept for getUpdates (Telegram does the same)."""
        if self.config.webhook_url is None:
            # getUpdates always answers in update_id order; only webhooks can arrive reordered.
            self.pending = sorted(
                self.pending + payloads * (2 if duplicate else 1), key=lambda u: u["update_id"]
            )
            self.new_update.set()
            return []
        attempts = await self.deliver(payloads, duplicate=duplicate)
        for attempt in attempts:
            if attempt.gave_up:
                self.last_error = (int(self.config.clock()), attempt.error or str(attempt.status))
        return attempts


class Inbound(InboundEvent):
    chat_id: int
    text: str | None = None
    first_name: str = "Contact"
    username: str | None = None
    document: dict[str, str] | None = None  # {"file_name", "mime_type", "content_base64"?}
    caption: str | None = None
    date: int | None = None

    @model_validator(mode="after")
    def _has_content(self) -> Inbound:
        if not self.text and self.document is None:
            raise ValueError("an inbound message needs `text` or `document`")
        return self


class Settings(BaseModel):
    bot_token: str | None = Field(None, pattern=TOKEN.pattern)


Method = Callable[[int, Json], Awaitable[Any]]


def create_app(config: TelegramConfig | None = None) -> FastAPI:
    """The Telegram Bot API fake; `app.state.fake` is its state, for in-process tests."""
    fake = TelegramFake(config or TelegramConfig())
    app = build_app(fake, "Fake Telegram Bot API")
    app.state.fake = fake

    def build_update(event: Inbound, index: int) -> tuple[Json, str]:
        user: Json = {"id": event.chat_id, "is_bot": False, "first_name": event.first_name}
        chat: Json = {"id": event.chat_id, "type": "private", "first_name": event.first_name}
        if event.username:
            user["username"] = chat["username"] = event.username
        message: Json = {
            "message_id": fake.next_message_id(event.chat_id),
            "from": user,
            "chat": chat,
            "date": event.date or int(fake.config.clock()) + index,
        }
        if event.text:
            message["text"] = event.text
        if event.document is not None:
            content = base64.b64decode(event.document.get("content_base64", "")) or b"fake file"
            stored = fake.store_file(
                content, event.document.get("file_name"), event.document.get("mime_type")
            )
            message["document"] = stored.as_document()
            if event.caption:
                message["caption"] = event.caption
        update_id = next(fake.update_ids)
        return {"update_id": update_id, "message": message}, str(update_id)

    app.include_router(inbound_router(fake, Inbound, build_update, fake.push))

    @app.put(f"{CONTROL_PREFIX}/config")
    async def configure(request: Request) -> Json:
        settings = parse_control(Settings, await control_body(request))
        if "bot_token" in settings.model_fields_set:
            fake.config.bot_token = settings.bot_token
        return {"bot_token": fake.config.bot_token}

    def bot_user(bot_id: int) -> Json:
        return {
            "id": bot_id,
            "is_bot": True,
            "first_name": "Chat4All Fake Bot",
            "username": fake.config.bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def sent_message(bot_id: int, chat_id: int | str) -> Json:
        chat_type = "private" if isinstance(chat_id, int) and chat_id > 0 else "group"
        return {
            "message_id": fake.next_message_id(chat_id),
            "from": bot_user(bot_id),
            "chat": {"id": chat_id, "type": chat_type},
            "date": int(fake.config.clock()),
        }

    async def get_me(bot_id: int, params: Json) -> Any:
        return bot_user(bot_id)

    async def send_message(bot_id: int, params: Json) -> Any:
        chat_id = _chat_id(params)
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise TelegramError(400, "Bad Request: message text is empty")
        if len(text) > TEXT_LIMIT:
            raise TelegramError(400, "Bad Request: message is too long")
        _json_param(params, "reply_parameters")
        return sent_message(bot_id, chat_id) | {"text": text}

    def send_file(kind: str) -> Method:
        async def send(bot_id: int, params: Json) -> Any:
            chat_id = _chat_id(params)
            caption = params.get("caption")
            if isinstance(caption, str) and len(caption) > CAPTION_LIMIT:
                raise TelegramError(400, "Bad Request: message caption is too long")
            stored = await _input_file(fake, params, kind)
            message = sent_message(bot_id, chat_id)
            if kind == "photo":
                message["photo"] = [stored.as_document() | {"width": 1, "height": 1}]
            else:
                message[kind] = stored.as_document()
            if caption:
                message["caption"] = caption
            return message

        return send

    async def get_file(bot_id: int, params: Json) -> Any:
        stored = fake.files.get(str(params.get("file_id")))
        if stored is None:
            raise TelegramError(400, "Bad Request: invalid file_id")
        return stored.as_document() | {"file_path": stored.file_path}

    async def set_webhook(bot_id: int, params: Json) -> Any:
        url = str(params.get("url") or "")
        secret = params.get("secret_token")
        if secret is not None and not SECRET_TOKEN.fullmatch(str(secret)):
            raise TelegramError(400, "Bad Request: secret token contains unallowed characters")
        if url and urlsplit(url).scheme not in ("http", "https"):
            raise TelegramError(
                400,
                "Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443",
            )
        if _flag(params, "drop_pending_updates"):
            fake.pending.clear()
        fake.config.webhook_url = url or None
        fake.secret_token = str(secret) if secret and url else None
        if url and fake.pending:
            pending, fake.pending = fake.pending, []
            await fake.push(pending, duplicate=False)
        return True

    async def delete_webhook(bot_id: int, params: Json) -> Any:
        if _flag(params, "drop_pending_updates"):
            fake.pending.clear()
        fake.config.webhook_url = None
        fake.secret_token = None
        return True

    async def get_webhook_info(bot_id: int, params: Json) -> Any:
        info: Json = {
            "url": fake.config.webhook_url or "",
            "has_custom_certificate": False,
            "pending_update_count": len(fake.pending),
            "max_connections": 40,
        }
        if fake.last_error is not None:
            info["last_error_date"], info["last_error_message"] = fake.last_error
        return info

    async def get_updates(bot_id: int, params: Json) -> Any:
        if fake.config.webhook_url is not None:
            raise TelegramError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(params.get("offset") or 0)
        if offset:  # confirms every update before it
            fake.pending = [u for u in fake.pending if u["update_id"] >= offset]
        if not fake.pending:
            fake.new_update.clear()
            timeout = min(float(params.get("timeout") or 0), MAX_LONG_POLL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(fake.new_update.wait(), timeout)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        return fake.pending[:limit]

    methods: dict[str, Method] = {
        "getMe": get_me,
        "sendMessage": send_message,
        "getFile": get_file,
        "setWebhook": set_webhook,
        "deleteWebhook": delete_webhook,
        "getWebhookInfo": get_webhook_info,
        "getUpdates": get_updates,
    } | {name: send_file(kind) for name, kind in FILE_METHODS.items()}

    @app.get("/file/bot{token}/{file_path:path}")
    async def download(token: str, file_path: str) -> Response:
        try:
            fake.bot_id(token)
        except TelegramError as error:
            return error_response(error)
        for stored in fake.files.values():
            if stored.file_path == file_path and stored.content is not None:
                return Response(stored.content, media_type=stored.mime_type)
        return error_response(TelegramError(404, "Not Found"))

    @app.api_route("/bot{token}/{method}", methods=["GET", "POST"])
    async def call(token: str, method: str, request: Request) -> Response:
        try:
            bot_id = fake.bot_id(token)
            handler = next(
                (h for name, h in methods.items() if name.lower() == method.lower()), None
            )
            if handler is None:
                raise TelegramError(404, "Not Found")
            try:
                params = await read_params(request)
            except ValueError as error:
                raise TelegramError(400, f"Bad Request: {error}") from error
            result = await handler(bot_id, params)
        except TelegramError as error:
            return error_response(error)
        return JSONResponse({"ok": True, "result": result})

    return app


def _chat_id(params: Json) -> int | str:
    value = params.get("chat_id")
    if isinstance(value, int):
        return value
    text = str(value or "")
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"@\w{4,}", text):
        return text
    raise TelegramError(400, "Bad Request: chat not found")


def _json_param(params: Json, name: str) -> Any:
    # Clients send objects as JSON text in form bodies (python-telegram-bot does).
    value = params.get(name)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as error:
            raise TelegramError(400, f"Bad Request: can't parse {name} JSON object") from error
    return value


def _flag(params: Json, name: str) -> bool:
    return params.get(name) in (True, "true", "True", "1")


async def _input_file(fake: TelegramFake, params: Json, kind: str) -> StoredFile:
    """A file sent as multipart (by field or `attach://name`), by URL or by a known file_id."""
    value = params.get(kind)
    if isinstance(value, str) and value.startswith("attach://"):
        value = params.get(value.removeprefix("attach://"))
    if isinstance(value, UploadFile):
        return fake.store_file(await value.read(), value.filename, value.content_type)
    if isinstance(value, str) and urlsplit(value).scheme in ("http", "https"):
        name = urlsplit(value).path.rsplit("/", 1)[-1] or None
        return fake.store_file(None, name, mimetypes.guess_type(value)[0])
    if isinstance(value, str) and value in fake.files:
        return fake.files[value]
    raise TelegramError(400, f"Bad Request: wrong remote file identifier specified: {kind}")
