"""What the fakes' fidelity tests share: an app that stands for Chat4All's webhook endpoint."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from fakes.common import WebhookPolicy


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Records every webhook POSTed to it; answers `statuses` in turn, then 200."""

    app: FastAPI = field(default_factory=FastAPI)
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        @self.app.post("/hook")
        async def hook(request: Request) -> Response:
            self.received.append(Received(dict(request.headers), await request.body()))
            return Response(status_code=self.statuses.pop(0) if self.statuses else 200)

    @property
    def transport(self) -> httpx.ASGITransport:
        return httpx.ASGITransport(self.app)


URL = "http://chat4all.test/hook"


class RecordedSleep:
    """Stands for asyncio.sleep in the fakes' webhook retries: records the waits, waits for none."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
def sleep() -> RecordedSleep:
    return RecordedSleep()


POLICY = WebhookPolicy(attempts=4, first_delay=0.5, max_delay=1.5)


def fake_client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://fake.test")
