"""The tus 1.0.0 headers every response under /v1/uploads carries, the version check every
request passes (412 otherwise), and `X-HTTP-Method-Override` for clients that can only POST."""

from __future__ import annotations

from typing import Final

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chat4all.api.problems import PROBLEM_JSON

TUS_VERSION: Final = "1.0.0"
UPLOADS_PATH: Final = "/v1/uploads"
# What browsers (tus-js-client, Uppy) on another origin may read from the answers.
EXPOSED: Final = (
    "Location, Upload-Offset, Upload-Length, Upload-Expires, Upload-Metadata, Tus-Resumable, "
    "Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm"
)


class TusHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(UPLOADS_PATH):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        override = headers.get(b"x-http-method-override")
        if override and scope["method"] == "POST":
            scope = {**scope, "method": override.decode("latin-1").upper()}
        if scope["method"] != "OPTIONS" and headers.get(b"tus-resumable") != TUS_VERSION.encode():
            await _refuse_version(scope, send)
            return

        async def with_tus_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"tus-resumable", TUS_VERSION.encode()),
                    (b"access-control-expose-headers", EXPOSED.encode()),
                ]
            await send(message)

        await self.app(scope, receive, with_tus_headers)


async def _refuse_version(scope: Scope, send: Send) -> None:
    body = orjson.dumps(
        {
            "type": "urn:chat4all:problem:tus-version",
            "title": "Unsupported tus version",
            "status": 412,
            "detail": f"send `Tus-Resumable: {TUS_VERSION}`, the only version served",
            "instance": scope["path"],
        }
    )
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"tus-version", TUS_VERSION.encode()),
        (b"tus-resumable", TUS_VERSION.encode()),
    ]
    await send({"type": "http.response.start", "status": 412, "headers": headers})
    await send({"type": "http.response.body", "body": body if scope["method"] != "HEAD" else b""})
