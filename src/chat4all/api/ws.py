"""The real-time stream: `GET /v1/stream` (WebSocket).

Authenticate with `?access_token=...` or a first frame `{"type": "auth", "data":
{"access_token": ...}}` within 10 seconds. Close codes: 4401 unauthenticated, 1007 a frame
that is not JSON, 1008 a slow client that fell too far behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from chat4all.bootstrap import Platform
from chat4all.domain.errors import Chat4AllError, Unauthenticated
from chat4all.ports.realtime import SubscriptionLost
from chat4all.services.auth import Principal
from chat4all.services.frames import frame

log = logging.getLogger(__name__)
router = APIRouter()

AUTH_TIMEOUT_SECONDS = 10
CLOSE_UNAUTHENTICATED = 4401
CLOSE_INVALID_DATA = 1007
CLOSE_POLICY = 1008


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

    async def send(raw: bytes) -> None:
        await websocket.send_text(raw.decode())

    session = platform.stream_session(principal.user_id, send)
    subscription = await session.open()
    pump = asyncio.create_task(_pump(subscription, session))
    try:
        while True:
            raw = await websocket.receive_text()
            try:
                await session.on_client_frame(raw)
            except orjson.JSONDecodeError:
                await websocket.close(CLOSE_INVALID_DATA, "frame is not valid JSON")
                return
            except Chat4AllError as e:
                await send(frame("error", {"title": e.title, "detail": e.detail}))
            if pump.done():
                break
    except WebSocketDisconnect:
        pass
    finally:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pump
        await subscription.close()
        await session.close()
    if pump.done() and not pump.cancelled() and isinstance(pump.exception(), SubscriptionLost):
        with contextlib.suppress(Exception):
            await websocket.close(CLOSE_POLICY, "too far behind; reconnect and resume")


async def _pump(subscription: Any, session: Any) -> None:
    while True:
        await session.on_published(await subscription.get())


async def _authenticate(websocket: WebSocket, platform: Platform) -> Principal:
    token = websocket.query_params.get("access_token")
    if token is None:
        raw = await asyncio.wait_for(websocket.receive_text(), AUTH_TIMEOUT_SECONDS)
        try:
            first = orjson.loads(raw)
            token = first["data"]["access_token"] if first["type"] == "auth" else None
        except (orjson.JSONDecodeError, KeyError, TypeError) as e:
            raise Unauthenticated(
                'the first frame must be {"type": "auth", "data": {"access_token": ...}}'
            ) from e
    if not isinstance(token, str):
        raise Unauthenticated("an access token is required")
    return await platform.auth.authenticate(token)
