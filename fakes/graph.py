"""What the three Meta fakes (WhatsApp, Messenger, Instagram) share: Graph API tokens, the Graph
error body, `X-Hub-Signature-256` webhooks and the `hub.*` verification handshake."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import httpx
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from fakes.common import (
    CONTROL_PREFIX,
    ControlError,
    Failure,
    FakeConfig,
    Json,
    PlatformFake,
    hub_signature,
)

# The messages Meta gives for the codes a connector has to handle (CHANNELS.md B1, B3).
GRAPH_MESSAGES = {
    4: "(#4) Application request limit reached",
    100: "(#100) Invalid parameter",
    190: "Invalid OAuth access token - Cannot parse access token",
    230: "(#230) Requires pages_messaging permission to manage the object",
    368: "(#368) Temporarily blocked for policies violations",
    551: "(#551) This person isn't available right now.",
    613: "(#613) Calls to this api have exceeded the rate limit.",
    10900: "(#10900) Activity already replied to",
    80007: "(#80007) Rate limit issues",
    130429: "(#130429) Rate limit hit",
    131026: "(#131026) Message undeliverable",
    131047: "(#131047) Re-engagement message",
    131048: "(#131048) Spam rate limit hit",
    131049: "(#131049) This message was not delivered to maintain healthy ecosystem engagement.",
    131052: "(#131052) Media download error",
    131053: "(#131053) Media upload error",
    131056: "(#131056) (Business Account, Consumer Account) pair rate limit hit",
    131057: "(#131057) Account in maintenance mode",
}


@dataclass
class GraphConfig(FakeConfig):
    """A Meta fake's settings: the access token it accepts and the app secret it signs with."""

    access_token: str | None = None  # None: any non-empty token
    app_secret: str = "fake-app-secret"


class GraphError(Exception):
    """A Graph API error; `graph_error_response` renders the body Meta sends."""

    def __init__(
        self, status: int, code: int, message: str | None = None, details: str | None = None
    ) -> None:
        super().__init__(message or GRAPH_MESSAGES.get(code, f"(#{code}) Error"))
        self.status = status
        self.code = code
        self.message = str(self)
        self.details = details


def graph_error_response(
    error: GraphError, product: str | None, retry_after: int | None = None
) -> JSONResponse:
    body: Json = {
        "message": error.message,
        "type": "OAuthException",
        "code": error.code,
        "fbtrace_id": "A" + secrets.token_urlsafe(16),
    }
    if error.details is not None:
        body["error_data"] = {"details": error.details}
        if product is not None:
            body["error_data"]["messaging_product"] = product
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse({"error": body}, status_code=error.status, headers=headers)


class GraphFake(PlatformFake):
    """A Meta fake: token checks, Graph errors, signed webhooks, the subscription handshake."""

    config: GraphConfig
    product: str | None = None  # `messaging_product` in error_data (WhatsApp only)

    def failure_response(self, failure: Failure) -> Response:
        error = GraphError(failure.status, failure.code or failure.status, failure.message)
        error.details = error.message
        return graph_error_response(error, self.product, failure.retry_after)

    def check_token(self, request: Request) -> None:
        """Bearer header or `access_token` query parameter, as the Graph API accepts both."""
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else None
        token = token or request.query_params.get("access_token")
        expected = self.config.access_token
        if not token or (expected is not None and token != expected):
            raise GraphError(401, 190)

    def webhook_headers(self, body: bytes) -> dict[str, str]:
        return {"X-Hub-Signature-256": hub_signature(self.config.app_secret, body)}


class Subscribe(BaseModel):
    callback_url: str
    verify_token: str


class GraphSettings(BaseModel):
    access_token: str | None = None
    app_secret: str | None = None
    webhook_url: str | None = None


def graph_control_router(fake: GraphFake) -> APIRouter:
    """`/_control/subscribe` (the handshake Meta runs when a callback URL is saved) and config."""
    router = APIRouter(prefix=CONTROL_PREFIX)

    @router.post("/subscribe")
    async def subscribe(order: Subscribe) -> Json:
        challenge = str(secrets.randbelow(10**10))
        query = {
            "hub.mode": "subscribe",
            "hub.challenge": challenge,
            "hub.verify_token": order.verify_token,
        }
        transport = fake.config.webhook_transport
        try:
            async with httpx.AsyncClient(transport=transport, timeout=10) as client:
                answer = await client.get(order.callback_url, params=query)
        except httpx.HTTPError as error:
            raise ControlError(502, f"the callback URL did not answer: {error}") from error
        if answer.status_code == 200 and answer.text == challenge:
            fake.config.webhook_url = order.callback_url
            return {"verified": True}
        return {"verified": False, "status": answer.status_code, "body": answer.text[:500]}

    @router.put("/config")
    async def configure(settings: GraphSettings) -> Json:
        for name, value in settings.model_dump(exclude_unset=True).items():
            setattr(fake.config, name, value)
        return {
            "access_token": fake.config.access_token,
            "webhook_url": fake.config.webhook_url,
        }

    return router


def install_graph_errors(app: FastAPI, fake: GraphFake) -> None:
    @app.exception_handler(GraphError)
    async def graph_error(_: Request, error: GraphError) -> JSONResponse:
        return graph_error_response(error, fake.product)
