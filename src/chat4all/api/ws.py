"""The real-time stream: `GET /v1/stream` (WebSocket).

Authenticate with `?access_token=...` or a first frame `{"type": "auth", "data":
{"access_token": ...}}` within 10 seconds. Close codes: 4401 unauthenticated, 1007 a frame
that is not JSON, 1008 a slow client that fell too far behind, 1011 an unexpected server error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from chat4all.bootstrap import Platform
from chat4all.domain.errors import Chat4AllError, Unauthenticated, Unavailable
from chat4all.observability import metrics
from chat4all.ports.realtime import Subscription, SubscriptionLost
from chat4all.services.frames import frame
from chat4all.services.interfaces import Principal
from chat4all.services.stream import StreamSession

log = logging.getLogger(__name__)
router = APIRouter()

AUTH_TIMEOUT_SECONDS = 10
CLOSE_UNAUTHENTICATED = 4401
CLOSE_INVALID_DATA = 1007
CLOSE_POLICY = 1008
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TRY_AGAIN_LATER = 1013  # a store or the hub is unreachable; reconnecting later works


@router.websocket("/v1/stream")
async def stream(websocket: WebSocket) -> None:
    platform: Platform = websocket.app.state.platform
    await websocket.accept()
    try:
        principal = await _authenticate(websocket, platform)
    except Unauthenticated as e:
        await websocket.close(CLOSE_UNAUTHENTICATED, e.detail[:120])
        return
    except (WebSocketDisconnect, TimeoutError):
        return
    except Unavailable as e:
        await websocket.close(CLOSE_TRY_AGAIN_LATER, e.detail[:120])
        return

    async def send(raw: bytes) -> None:
        await websocket.send_text(raw.decode())

    session = platform.stream_session(principal.user_id, send)
    open_streams = metrics.STREAM_CONNECTIONS.labels("websocket")
    open_streams.inc()  # from before `ready` is sent, so a client that saw it is counted
    try:
        subscription = await session.open()
    except BaseException as e:  # open() has undone what it had done
        open_streams.dec()
        if not isinstance(e, Unavailable):
            raise
        with contextlib.suppress(Exception):
            await websocket.close(CLOSE_TRY_AGAIN_LATER, e.detail[:120])
        return
    pump = asyncio.create_task(_pump(subscription, session))
    reader = asyncio.create_task(_read(websocket, session))
    try:
        await asyncio.wait({pump, reader}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        open_streams.dec()
        for task in (pump, reader):
            task.cancel()
        await asyncio.gather(pump, reader, return_exceptions=True)
        await subscription.close()
        await session.close()
    if reader.done() and not reader.cancelled() and reader.exception() is None:
        close = reader.result()
    elif pump.done() and not pump.cancelled() and isinstance(pump.exception(), SubscriptionLost):
        close = (CLOSE_POLICY, "too far behind; reconnect and resume")
    elif pump.done() and not pump.cancelled() and isinstance(pump.exception(), Unavailable):
        close = (CLOSE_TRY_AGAIN_LATER, "a store is unreachable; reconnect and resume")
    else:
        close = None
    if close is not None:
        with contextlib.suppress(Exception):  # the client may be gone already
            await websocket.close(*close)


async def _pump(subscription: Subscription, session: StreamSession) -> None:
    """Hub -> client, until the subscription is lost or the connection fails."""
    while True:
        await session.on_published(await subscription.get())


async def _read(websocket: WebSocket, session: StreamSession) -> tuple[int, str] | None:
    """Client -> session, until the client leaves (None) or must be closed (code, reason)."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return None
        raw = message.get("text") or message.get("bytes") or b""
        try:
            await session.on_client_frame(raw)
        except orjson.JSONDecodeError:
            return CLOSE_INVALID_DATA, "frame is not valid JSON"
        except Chat4AllError as e:
            await websocket.send_text(
                frame("error", {"title": e.title, "detail": e.detail}).decode()
            )


async def _authenticate(websocket: WebSocket, platform: Platform) -> Principal:
    token = websocket.query_params.get("access_token")
    if token is None:
        message = await asyncio.wait_for(websocket.receive(), AUTH_TIMEOUT_SECONDS)
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        try:
            first = orjson.loads(message.get("text") or message.get("bytes") or b"")
            token = first["data"]["access_token"] if first["type"] == "auth" else None
        except (orjson.JSONDecodeError, KeyError, TypeError) as e:
            raise Unauthenticated(
                'the first frame must be {"type": "auth", "data": {"access_token": ...}}'
            ) from e
    if not isinstance(token, str):
        raise Unauthenticated("an access token is required")
    return await platform.auth.authenticate(token)
