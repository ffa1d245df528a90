"""Request bodies over the limit are refused with a 413 problem: from the Content-Length before
any of the body is read, or as soon as a body sent without one (chunked) passes the limit."""

from __future__ import annotations

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chat4all.api.problems import PROBLEM_JSON


class BodyLimit:
    def __init__(self, app: ASGIApp, max_body_size: int, unlimited_prefix: str = "") -> None:
        self.app = app
        self.max_body_size = max_body_size
        self.unlimited_prefix = unlimited_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (
            self.unlimited_prefix and scope["path"].startswith(self.unlimited_prefix)
        ):
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                if value.isdigit() and int(value) > self.max_body_size:
                    await self._refuse(scope, send, int(value))
                    return
                break
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_size:
                # Raised inside the app's body read: the problem handlers answer it.
                raise HTTPException(413, f"the body passed the limit of {self.max_body_size} bytes")
            return message

        await self.app(scope, counted, send)

    async def _refuse(self, scope: Scope, send: Send, length: int) -> None:
        body = orjson.dumps(
            {
                "type": "urn:chat4all:problem:too-large",
                "title": "Request body too large",
                "status": 413,
                "detail": f"the body is {length} bytes; the limit is {self.max_body_size}",
                "instance": scope["path"],
            }
        )
        headers = [(b"content-type", PROBLEM_JSON.encode()), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
