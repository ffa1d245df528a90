"""What every platform fake shares: webhook signing and delivery with retries, the log of API
calls received, failure injection, request-body parsing and the common control endpoints.

A platform module subclasses `PlatformFake` (its state and its error body) and adds its own
routes to the app `build_app` returns.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import httpx
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

CONTROL_PREFIX = "/_control"
Json = dict[str, Any]


def hub_signature(app_secret: str, body: bytes) -> str:
    """Meta's `X-Hub-Signature-256` value: HMAC-SHA256 of the raw body, keyed by the app secret."""
    digest = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def encode_json(payload: Json) -> bytes:
    # Meta escapes non-ASCII in its bodies (hence "sign the raw bytes, never re-serialise").
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode()


@dataclass
class WebhookPolicy:
    """How a fake retries a webhook Chat4All did not accept: bounded exponential backoff."""

    attempts: int = 5
    first_delay: float = 0.5
    max_delay: float = 8.0

    def delays(self) -> list[float]:
        """The waits between tries: first_delay, doubling, capped at max_delay."""
        return [min(self.first_delay * 2**n, self.max_delay) for n in range(self.attempts - 1)]


@dataclass
class FakeConfig:
    """What every fake is told at start; `PUT /_control/config` changes it at run time."""

    webhook_url: str | None = None
    webhook_policy: WebhookPolicy = field(default_factory=WebhookPolicy)
    # Set to deliver webhooks straight into an in-process app (httpx.ASGITransport(app)).
    webhook_transport: httpx.AsyncBaseTransport | None = None
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


@dataclass
class DeliveryAttempt:
    """One POST of a webhook to Chat4All, as `/_control/webhooks` lists it."""

    delivery_id: int
    attempt: int
    url: str
    status: int | None
    error: str | None
    body: Json
    gave_up: bool = False


class WebhookSender:
    """Posts a webhook until a 2xx answer or the policy's last try; records every attempt."""

    def __init__(self, config: FakeConfig) -> None:
        self._config = config
        self._ids = itertools.count(1)
        self.attempts: list[DeliveryAttempt] = []

    async def deliver(
        self, url: str, body: bytes, headers: dict[str, str]
    ) -> list[DeliveryAttempt]:
        delivery_id = next(self._ids)
        payload = json.loads(body)
        policy = self._config.webhook_policy
        delays = [*policy.delays(), None]
        made: list[DeliveryAttempt] = []
        async with httpx.AsyncClient(
            transport=self._config.webhook_transport, timeout=10
        ) as client:
            for attempt, delay in enumerate(delays, start=1):
                status, error = await self._post(client, url, body, headers)
                ok = status is not None and 200 <= status < 300
                made.append(
                    DeliveryAttempt(
                        delivery_id, attempt, url, status, error, payload, not ok and delay is None
                    )
                )
                self.attempts.append(made[-1])
                if ok or delay is None:
                    break
                await self._config.sleep(delay)
        return made

    @staticmethod
    async def _post(
        client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int | None, str | None]:
        try:
            answer = await client.post(
                url, content=body, headers={"Content-Type": "application/json", **headers}
            )
        except httpx.HTTPError as error:
            return None, f"{type(error).__name__}: {error}"
        return answer.status_code, None if answer.is_success else answer.text[:500]


@dataclass
class Failure:
    """An injected failure: the platform's error for `code`, with this HTTP status."""

    status: int
    code: int | None = None
    message: str | None = None
    retry_after: int | None = None
    match: str | None = None


class FailNext(BaseModel):
    count: int = Field(1, ge=1)
    status: int = Field(ge=400, le=599)
    code: int | None = None
    message: str | None = None
    retry_after: int | None = Field(None, ge=0)
    match: str | None = None


class FailureInjector:
    """Fails the next N matching platform calls."""

    def __init__(self) -> None:
        self._armed: list[Failure] = []

    def arm(self, count: int, failure: Failure) -> None:
        self._armed.extend([failure] * count)

    def take(self, path: str) -> Failure | None:
        for index, failure in enumerate(self._armed):
            if failure.match is None or failure.match in path:
                return self._armed.pop(index)
        return None

    def clear(self) -> None:
        self._armed.clear()


@dataclass
class Call:
    """One platform API call the fake received, and what it answered."""

    seq: int
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    status: int = 0
    response: Any = None


async def read_params(request: Request) -> Json:
    """The request's parameters, however the client sent them: query, JSON, form or multipart.

    Multipart files stay `UploadFile`s; `describe` turns them into something a log can hold.
    """
    params: Json = dict(request.query_params)
    # Read whole first: the body is then cached, so the call-log middleware and the route can
    # both parse it (a streamed form could be read only once).
    raw = await request.body()
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        if raw:
            decoded = json.loads(raw)
            if not isinstance(decoded, dict):
                raise ValueError("the JSON body must be an object")
            params.update(decoded)
    elif content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        form = await request.form()
        params.update({key: value for key, value in form.multi_items()})
    return params


def describe(params: Json) -> Json:
    return {
        key: (
            {"filename": value.filename, "content_type": value.content_type, "size": value.size}
            if isinstance(value, UploadFile)
            else value
        )
        for key, value in params.items()
    }


class PlatformFake:
    """The state every fake keeps; a platform subclass adds its own and its error body."""

    def __init__(self, config: FakeConfig) -> None:
        self.config = config
        self.calls: list[Call] = []
        self.failures = FailureInjector()
        self.webhooks = WebhookSender(config)

    def failure_response(self, failure: Failure) -> Response:
        """The platform's answer for an injected failure."""
        raise NotImplementedError

    def reset(self) -> None:
        self.calls.clear()
        self.failures.clear()
        self.webhooks.attempts.clear()

    def webhook_headers(self, body: bytes) -> dict[str, str]:
        """The headers that authenticate a webhook to Chat4All (a signature, a secret token)."""
        return {}

    async def deliver(
        self, payloads: Sequence[Json], *, url: str | None = None, duplicate: bool = False
    ) -> list[DeliveryAttempt]:
        """Posts each payload (twice with `duplicate`), one after the other, in the given order."""
        target = url or self.config.webhook_url
        if target is None:
            raise ControlError(409, "no webhook URL is set for this fake")
        made: list[DeliveryAttempt] = []
        for payload in payloads:
            body = encode_json(payload)
            for _ in range(2 if duplicate else 1):
                made += await self.webhooks.deliver(target, body, self.webhook_headers(body))
        return made


class ControlError(Exception):
    """A control request the fake cannot carry out; answered as 4xx JSON."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


Order = Literal["as_given", "reverse", "shuffle"]


def reorder(items: Sequence[Json], order: Order, seed: int | None) -> list[Json]:
    if order == "reverse":
        return list(reversed(items))
    if order == "shuffle":
        shuffled = list(items)
        random.Random(seed).shuffle(shuffled)
        return shuffled
    return list(items)


def deliveries_json(attempts: Sequence[DeliveryAttempt]) -> list[Json]:
    return [asdict(attempt) for attempt in attempts]


class _RecordCalls(BaseHTTPMiddleware):
    """Records every platform call (not control calls) and answers injected failures first."""

    def __init__(self, app: Any, fake: PlatformFake) -> None:
        super().__init__(app)
        self._fake = fake

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if request.url.path.startswith(CONTROL_PREFIX):
            return await call_next(request)
        try:
            body: Any = describe(await read_params(request))
        except ValueError:
            body = (await request.body()).decode(errors="replace")
        call = Call(
            len(self._fake.calls) + 1,
            request.method,
            request.url.path,
            dict(request.query_params),
            dict(request.headers),
            body,
        )
        self._fake.calls.append(call)
        failure = self._fake.failures.take(request.url.path)
        if failure is not None:
            response = self._fake.failure_response(failure)
            raw = bytes(response.body)
        else:
            response = await call_next(request)
            raw = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[attr-defined]
        call.status = response.status_code
        try:
            call.response = json.loads(raw) if raw else None
        except ValueError:
            call.response = raw.decode(errors="replace")
        return Response(raw, response.status_code, dict(response.headers), response.media_type)


def build_app(fake: PlatformFake, title: str) -> FastAPI:
    """An app with the call log, failure injection and the control endpoints every fake has."""
    app = FastAPI(title=title, docs_url=f"{CONTROL_PREFIX}/docs", openapi_url=None)
    app.add_middleware(_RecordCalls, fake=fake)

    @app.exception_handler(ControlError)
    async def control_error(_: Request, error: ControlError) -> JSONResponse:
        return JSONResponse({"detail": error.detail}, status_code=error.status)

    control = APIRouter(prefix=CONTROL_PREFIX)

    @control.get("/calls")
    async def calls() -> list[Json]:
        return [asdict(call) for call in fake.calls]

    @control.get("/webhooks")
    async def webhooks() -> list[Json]:
        return deliveries_json(fake.webhooks.attempts)

    @control.post("/reset")
    async def reset() -> Json:
        fake.reset()
        return {"reset": True}

    @control.post("/fail-next")
    async def fail_next(order: FailNext) -> Json:
        failure = Failure(order.status, order.code, order.message, order.retry_after, order.match)
        fake.failures.arm(order.count, failure)
        return {"armed": order.count}

    app.include_router(control)
    return app
