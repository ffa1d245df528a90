"""A Chat4All server (embedded, uvicorn on a free port) wired to one platform fake (uvicorn on
another): a channel account for the fake, an agent as the account's inbox, and helpers to
play the contact's side through the fake's control API."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from chat4all.adapters.sql.channels import SqlChannelDirectory
from chat4all.bootstrap.embedded import build_embedded_accounts
from chat4all.ports.connectors import ChannelAccount
from tests.integration.harness import User, running_server, settings_for_tests

from fakes.common import WebhookPolicy  # isort: skip
from fakes import instagram, messenger, telegram, whatsapp  # isort: skip
from fakes.serving import serving  # isort: skip

CHANNELS = ("whatsapp", "telegram", "messenger", "instagram")
APP_SECRET = "rig-app-secret"
VERIFY_TOKEN = "rig-verify-token"
TG_TOKEN = "123456:rig-bot-secret"
TG_SECRET = "rig-secret-token"
ACCOUNT = "main"
ADMIN_TOKEN = "rig-admin-token-0123456789"
FAST_WEBHOOK_RETRIES = WebhookPolicy(attempts=4, first_delay=0.05, max_delay=0.2)


def fast_settings(data_dir: Path, **overrides: Any) -> Any:
    """Short retry delays and breaker timeouts, so a fault test takes seconds."""
    values: dict[str, Any] = {
        "delivery_attempts": 60,
        "delivery_first_retry_seconds": 0.02,
        "delivery_max_retry_seconds": 0.2,
        "breaker_failures": 5,
        "breaker_reset_seconds": 0.05,
        "inbound_reorder_seconds": 0.3,
        "admin_token": ADMIN_TOKEN,
    }
    return settings_for_tests(data_dir, **(values | overrides))


def fake_app(channel: str) -> tuple[FastAPI, dict[str, Any]]:
    """The fake, and the account configuration that points Chat4All at it."""
    if channel == "whatsapp":
        wa = whatsapp.WhatsAppConfig(app_secret=APP_SECRET, webhook_policy=FAST_WEBHOOK_RETRIES)
        return whatsapp.create_app(wa), {"phone_number_id": wa.phone_number_id}
    if channel == "telegram":
        tg = telegram.TelegramConfig(webhook_policy=FAST_WEBHOOK_RETRIES)
        return telegram.create_app(tg), {"bot_token": TG_TOKEN, "secret_token": TG_SECRET}
    meta = messenger.MessengerConfig(app_secret=APP_SECRET, webhook_policy=FAST_WEBHOOK_RETRIES)
    if channel == "messenger":
        return messenger.create_app(meta), {"page_id": meta.page_id}
    return instagram.create_app(meta), {"ig_user_id": meta.page_id}


@dataclass
class Rig:
    channel: str
    api: str  # Chat4All's base URL
    fake: httpx.AsyncClient  # the fake's base URL
    agent: User

    @property
    def webhook_url(self) -> str:
        return f"{self.api}/v1/channels/{self.channel}/{ACCOUNT}/webhook"

    async def control(self, path: str, body: Any = None, method: str = "POST") -> Any:
        r = await self.fake.request(method, f"/_control/{path}", json=body)
        assert r.status_code < 300, r.text
        return r.json()

    def inbound(self, contact: str, text: str, **extra: Any) -> dict[str, Any]:
        """A control body: `contact` writes `text`."""
        if self.channel == "whatsapp":
            return {"from": contact, "text": text, **extra}
        if self.channel == "telegram":
            return {"chat_id": int(contact), "text": text, **extra}
        return {"sender_id": contact, "text": text, **extra}

    async def write_in(self, contact: str, text: str, **extra: Any) -> dict[str, Any]:
        answer: dict[str, Any] = await self.control("inbound", self.inbound(contact, text, **extra))
        return answer

    async def sends(self) -> list[dict[str, Any]]:
        """The successful send calls the fake received, in order: (to, text)."""
        calls = await self.control("calls", method="GET")
        out = []
        for call in calls:
            body = call.get("body") or {}
            if call["status"] != 200 or not isinstance(body, dict):
                continue
            if self.channel == "whatsapp" and body.get("type") == "text":
                out.append(
                    {"to": body["to"], "text": body["text"]["body"], "response": call["response"]}
                )
            elif self.channel == "telegram" and call["path"].endswith("/sendMessage"):
                out.append(
                    {"to": str(body["chat_id"]), "text": body["text"], "response": call["response"]}
                )
            elif "recipient" in body and "message" in body:
                out.append(
                    {
                        "to": body["recipient"]["id"],
                        "text": body["message"].get("text"),
                        "response": call["response"],
                    }
                )
        return out

    async def conversations(self) -> list[dict[str, Any]]:
        r = await self.agent.get("/v1/conversations")
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"] if isinstance(r.json(), dict) else r.json()
        return items

    async def texts(self, conversation_id: str) -> list[str]:
        r = await self.agent.get(
            f"/v1/conversations/{conversation_id}/messages", params={"after_seq": 0, "limit": 100}
        )
        assert r.status_code == 200, r.text
        return [m["payload"].get("text") for m in r.json()["items"]]


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 30.0) -> Any:
    """Poll `check` until it returns something truthy (an upper bound, not a timing claim)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"not reached within {timeout} s: last result {result!r}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def rig(channel: str, data_dir: Path, **settings: Any) -> AsyncIterator[Rig]:
    app, account_config = fake_app(channel)
    config = fast_settings(data_dir, **settings)
    async with serving(app) as fake_url:
        auth, metadata = await build_embedded_accounts(config)
        try:
            agent = await auth.register("agent", "agent@example.com", "agent-password")
            await SqlChannelDirectory(metadata.engine).add_account(  # type: ignore[attr-defined]
                ChannelAccount(
                    ACCOUNT,
                    channel,
                    account_config
                    | {
                        "base_url": fake_url,
                        "access_token": "rig-token",
                        "app_secret": APP_SECRET,
                        "verify_token": VERIFY_TOKEN,
                        "inbox_user_ids": [str(agent.user_id)],
                    },
                )
            )
        finally:
            await metadata.close()
        async with (
            running_server(config) as api,
            httpx.AsyncClient(base_url=api, timeout=30) as http,
            httpx.AsyncClient(base_url=fake_url, timeout=60) as fake,
        ):
            t = await http.post(
                "/v1/auth/token", json={"username": "agent", "password": "agent-password"}
            )
            assert t.status_code == 200, t.text
            tokens = t.json()
            the_rig = Rig(
                channel,
                api,
                fake,
                User(
                    str(agent.user_id),
                    "agent",
                    tokens["access_token"],
                    tokens["refresh_token"],
                    http,
                ),
            )
            if channel == "telegram":
                r = await fake.post(
                    f"/bot{TG_TOKEN}/setWebhook",
                    json={"url": the_rig.webhook_url, "secret_token": TG_SECRET},
                )
                assert r.json()["ok"], r.text
            else:
                subscribed = await the_rig.control(
                    "subscribe", {"callback_url": the_rig.webhook_url, "verify_token": VERIFY_TOKEN}
                )
                assert subscribed["verified"], subscribed
            yield the_rig
