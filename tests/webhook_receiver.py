"""A real HTTP endpoint for webhook tests: an aiohttp server on a free loopback port that
checks every request's signature with the `standardwebhooks` library, and can fail the first
tries of each delivery, answer slowly, or not be there at all."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from standardwebhooks.webhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

from chat4all.devcluster import free_port


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int
    verified_by: list[str]  # which of the receiver's secrets verified the signature

    @property
    def msg_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def payload(self) -> dict[str, Any]:
        parsed: dict[str, Any] = orjson.loads(self.body)
        return parsed


@dataclass
class Receiver:
    secrets: list[str] = field(default_factory=list)
    fail_first: int = 0  # answer 500 to the first tries of each webhook-id
    # With a fake clock, the signed timestamp is the fake one: check the signature only.
    check_timestamp: bool = True
    gate: asyncio.Event | None = None  # when set, each request waits for it
    received: list[Received] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    port: int = field(default_factory=free_port)
    _tries: Counter[str] = field(default_factory=Counter)
    _runner: web.AppRunner | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def __aenter__(self) -> Receiver:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.gate is not None:
            self.gate.set()  # held requests would make the shutdown wait for them
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def until(self, predicate: Callable[[Receiver], bool], timeout: float = 30.0) -> None:
        """Wait until `predicate(self)` holds, checking after each change to the requests."""
        async with asyncio.timeout(timeout):
            while not predicate(self):
                self._changed.clear()
                await self._changed.wait()

    def successes(self) -> list[Received]:
        return [r for r in self.received if r.status == 200]

    def unverified(self) -> list[Received]:
        return [r for r in self.received if not r.verified_by]

    async def _handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self._changed.set()
        try:
            if self.gate is not None:
                await self.gate.wait()
            body = await request.read()
            headers = {k.lower(): v for k, v in request.headers.items()}
            verified_by = [s for s in self.secrets if self._verifies(s, body, headers)]
            msg_id = headers.get("webhook-id", "")
            self._tries[msg_id] += 1
            if not verified_by:
                status = 401
            elif self._tries[msg_id] <= self.fail_first:
                status = 500
            else:
                status = 200
            self.received.append(Received(headers, body, status, verified_by))
            return web.Response(status=status)
        finally:
            self.in_flight -= 1
            self._changed.set()

    def _verifies(self, secret: str, body: bytes, headers: dict[str, str]) -> bool:
        verifier = Verifier(secret)
        try:
            if self.check_timestamp:
                verifier.verify(body, headers)
                return True
            # The library's own signing, at the header's timestamp, among the header's
            # signatures: the check `verify` makes, without comparing against the real time.
            at = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
            expected = verifier.sign(headers["webhook-id"], at, body.decode())
            return expected in headers["webhook-signature"].split(" ")
        except (WebhookVerificationError, KeyError, ValueError):
            return False
