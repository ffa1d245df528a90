"""A real Chat4All server for tests: uvicorn on a free loopback port, embedded profile on a
temporary data folder, and small clients that speak its HTTP API and WebSocket stream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect

from chat4all.api.app import create_app
from chat4all.bootstrap import Platform, build_embedded
from chat4all.settings import Settings
from fakes.serving import serving


def settings_for_tests(data_dir: Path, **overrides: Any) -> Settings:
    # Cheap password hashing keeps tests fast; production uses the defaults.
    base: dict[str, Any] = {
        "data_dir": data_dir,
        "jwt_secret": "test-secret-" + "x" * 40,
        "password_hash_time_cost": 1,
        "password_hash_memory_kib": 1024,
        "send_rate_per_second": 0,  # tests/integration/test_rate_limit.py sets one
    }
    return Settings(**(base | overrides))


@contextlib.asynccontextmanager
async def running_server(
    settings: Settings, adjust: Callable[[Platform], Awaitable[None]] | None = None
) -> AsyncIterator[str]:
    """The server's URL; `adjust` may change the platform before it starts."""

    async def build() -> Platform:
        platform = await build_embedded(settings)
        if adjust is not None:
            await adjust(platform)
        return platform

    app = create_app(
        build,
        settings.max_request_body_bytes,
        admin_token=settings.admin_token,
        web_dir=settings.web_dir,
    )
    async with serving(app, lifespan="on") as url:
        yield url


@dataclass
class User:
    user_id: str
    username: str
    token: str
    refresh_token: str
    http: httpx.AsyncClient

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.http.get(path, headers=self.auth, **kw)

    async def post(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return await self.http.post(path, json=json, headers=self.auth, **kw)

    async def delete(self, path: str) -> httpx.Response:
        return await self.http.delete(path, headers=self.auth)

    async def private_with(self, other: User) -> str:
        r = await self.post("/v1/conversations", {"type": "private", "members": [other.user_id]})
        assert r.status_code in (200, 201), r.text
        return str(r.json()["conversation_id"])

    async def send(
        self, conversation_id: str, text: str, message_id: str | None = None
    ) -> dict[str, Any]:
        r = await self.post(
            f"/v1/conversations/{conversation_id}/messages",
            {"message_id": message_id or str(uuid4()), "payload": {"type": "text", "text": text}},
        )
        assert r.status_code == 202, r.text
        body: dict[str, Any] = r.json()
        return body

    def stream(self, base_url: str) -> Stream:
        return Stream(base_url.replace("http", "ws", 1) + f"/v1/stream?access_token={self.token}")


async def register(http: httpx.AsyncClient, name: str | None = None) -> User:
    username = name or f"user{uuid4().hex[:10]}"
    password = "password-" + username
    r = await http.post(
        "/v1/auth/register",
        json={"username": username, "email": f"{username}@example.com", "password": password},
    )
    assert r.status_code == 201, r.text
    t = await http.post("/v1/auth/token", json={"username": username, "password": password})
    assert t.status_code == 200, t.text
    body = t.json()
    return User(r.json()["user_id"], username, body["access_token"], body["refresh_token"], http)


class Stream:
    """A WebSocket client of /v1/stream that collects frames by type."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ws: ClientConnection | None = None

    async def __aenter__(self) -> Stream:
        self.ws = await connect(self.url)
        ready = await self.next_frame()
        assert ready["type"] == "ready", ready
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.ws is not None
        await self.ws.close()

    async def send(self, kind: str, data: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send(orjson.dumps({"type": kind, "data": data}).decode())

    async def next_frame(self, timeout: float = 5.0) -> dict[str, Any]:
        assert self.ws is not None
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        frame: dict[str, Any] = orjson.loads(raw)
        return frame

    async def next_of(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next frame of `kind`, skipping others."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self.next_frame(max(0.01, deadline - loop.time()))
            if frame["type"] == kind:
                return frame

    async def messages(
        self, count: int, timeout: float = 10.0, ack: bool = True
    ) -> list[dict[str, Any]]:
        """`count` message.new frames' data, acking each (as a real client does)."""
        out: list[dict[str, Any]] = []
        while len(out) < count:
            data = (await self.next_of("message.new", timeout))["data"]
            out.append(data)
            if ack:
                await self.send("ack", {"message_id": data["message_id"]})
        return out
