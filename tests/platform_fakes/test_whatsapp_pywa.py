"""The WhatsApp fake driven by pywa: its client sends through the fake and maps the fake's error
bodies to its own exceptions; its webhook server verifies the handshake, checks the fake's
`X-Hub-Signature-256` and parses the fake's inbound messages and statuses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pywa import errors
from pywa_async.client import WhatsApp
from pywa_async.types.message import Message
from pywa_async.types.message_status import MessageStatus

from fakes import whatsapp
from fakes.whatsapp import WhatsAppConfig
from tests.platform_fakes.conftest import POLICY, RecordedSleep

PHONE_ID = "106540352242922"
TOKEN = "EAAJ-fake-token"
SECRET = "whatsapp-app-secret"
HOOK = "http://chat4all.test/hook"


@dataclass
class Setup:
    fake: FastAPI
    wa: WhatsApp
    control: httpx.AsyncClient
    messages: list[Message] = field(default_factory=list)
    statuses: list[MessageStatus[Any]] = field(default_factory=list)


@pytest.fixture
async def setup(sleep: RecordedSleep) -> AsyncIterator[Setup]:
    server = FastAPI()  # stands for Chat4All's webhook endpoint, served by pywa's own handlers
    fake = whatsapp.create_app(
        WhatsAppConfig(
            access_token=TOKEN,
            app_secret=SECRET,
            phone_number_id=PHONE_ID,
            webhook_policy=POLICY,
            webhook_transport=httpx.ASGITransport(server),
            clock=lambda: 1_700_000_000.0,
            sleep=sleep,
        )
    )
    # pywa points its client at graph.facebook.com; the transport takes its calls to the fake.
    session = httpx.AsyncClient(transport=httpx.ASGITransport(fake))
    wa = WhatsApp(
        phone_id=PHONE_ID,
        token=TOKEN,
        session=session,
        server=server,
        webhook_endpoint="/hook",
        verify_token="verify-me",
        app_secret=SECRET,
        api_version="22.0",
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(fake), base_url="http://fake"
    ) as control:
        made = Setup(fake, wa, control)

        @wa.on_message()  # type: ignore[misc]  # pywa types its decorators loosely
        async def on_message(_: WhatsApp, message: Message) -> None:
            made.messages.append(message)

        @wa.on_message_status()  # type: ignore[misc]
        async def on_status(_: WhatsApp, status: MessageStatus[Any]) -> None:
            made.statuses.append(status)

        yield made
    await session.aclose()


async def test_send_text_document_and_mark_read(setup: Setup) -> None:
    sent = await setup.wa.send_message(to="16315551181", text="Hello from Chat4All")
    document = await setup.wa.send_document(
        to="16315551181", document="https://files.test/report.pdf", filename="report.pdf"
    )
    media_id = await setup.wa.upload_media(
        media=b"\x89PNG fake", mime_type="image/png", filename="a.png"
    )
    image = await setup.wa.send_image(to="16315551181", image=media_id.id, caption="look")
    read = await setup.wa.mark_message_as_read(message_id="wamid.incoming")

    calls = (await setup.control.get("/_control/calls")).json()
    bodies = [call["body"] for call in calls]
    assert sent.id.startswith("wamid.")
    assert calls[0]["path"] == f"/v22.0/{PHONE_ID}/messages"
    assert calls[0]["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert bodies[0]["to"] == "16315551181"
    assert bodies[0]["text"]["body"] == "Hello from Chat4All"
    assert bodies[1]["document"] == {
        "link": "https://files.test/report.pdf",
        "filename": "report.pdf",
    }
    assert calls[2]["path"] == f"/v22.0/{PHONE_ID}/media"
    assert bodies[3]["image"]["id"] == media_id.id
    assert {sent.id, document.id, image.id} == {
        call["response"]["messages"][0]["id"]
        for call in calls[:4]
        if call["response"].get("messages")
    }
    assert read.success is True
    assert bodies[4] == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.incoming",
    }


@pytest.mark.parametrize(
    ("status", "code", "exception"),
    [
        (400, 131056, errors.TooManyMessages),
        (429, 130429, errors.RateLimitHit),
        (400, 131047, errors.ReEngagementMessage),
        (400, 131026, errors.MessageUndeliverable),
    ],
)
async def test_injected_errors_map_to_pywa_exceptions(
    setup: Setup, status: int, code: int, exception: type[Exception]
) -> None:
    await setup.control.post("/_control/fail-next", json={"status": status, "code": code})
    with pytest.raises(exception) as raised:
        await setup.wa.send_message(to="16315551181", text="hi")
    assert raised.value.status_code == status  # type: ignore[attr-defined]
    assert await setup.wa.send_message(to="16315551181", text="hi")  # only the next call failed


async def test_invalid_requests_and_tokens(setup: Setup) -> None:
    with pytest.raises(errors.WhatsAppError) as too_long:
        await setup.wa.send_message(to="16315551181", text="x" * 4097)
    await setup.wa.send_message(to="16315551181", text="x" * 4096)
    await setup.control.put("/_control/config", json={"access_token": "another"})
    with pytest.raises(errors.ExpiredAccessToken):
        await setup.wa.send_message(to="16315551181", text="hi")

    assert too_long.value.code == 100
    assert "4096" in (too_long.value.details or "")


async def test_webhooks_pass_pywa_verification_and_parsing(setup: Setup) -> None:
    wrong = await setup.control.post(
        "/_control/subscribe", json={"callback_url": HOOK, "verify_token": "not-it"}
    )
    right = await setup.control.post(
        "/_control/subscribe", json={"callback_url": HOOK, "verify_token": "verify-me"}
    )
    inbound = await setup.control.post(
        "/_control/inbound", json={"from": "16315551181", "name": "Ana", "text": "olá"}
    )
    sent = await setup.wa.send_message(
        to="16315551181", text="reply", reply_to_message_id=inbound.json()["message_id"]
    )
    for status in ("delivered", "read"):
        await setup.control.post("/_control/status", json={"message_id": sent.id, "status": status})

    assert wrong.json()["verified"] is False
    assert right.json() == {"verified": True}
    [message] = setup.messages
    assert message.id == inbound.json()["message_id"]
    assert message.text == "olá"
    assert message.from_user.wa_id == "16315551181"
    assert message.from_user.name == "Ana"
    assert message.timestamp.timestamp() == 1_700_000_000
    assert [(s.id, s.status.value) for s in setup.statuses] == [
        (sent.id, "delivered"),
        (sent.id, "read"),
    ]


async def test_a_closed_window_fails_asynchronously_with_131047(setup: Setup) -> None:
    await setup.control.post(
        "/_control/subscribe", json={"callback_url": HOOK, "verify_token": "verify-me"}
    )
    await setup.control.post("/_control/window", json={"wa_id": "16315551181", "open": False})
    sent = await setup.wa.send_message(to="16315551181", text="too late")  # Meta accepts it...
    fake_state = setup.fake.state.fake
    await fake_state.drain()

    [status] = setup.statuses  # ...then reports it failed
    assert status.id == sent.id
    assert status.status.value == "failed"
    assert status.error is not None
    assert status.error.code == 131047
    assert isinstance(status.error, errors.ReEngagementMessage)


async def test_pywa_rejects_a_webhook_signed_with_another_secret(setup: Setup) -> None:
    await setup.control.post(
        "/_control/subscribe", json={"callback_url": HOOK, "verify_token": "verify-me"}
    )
    await setup.control.put("/_control/config", json={"app_secret": "not-the-app-secret"})
    answer = await setup.control.post("/_control/inbound", json={"from": "1555", "text": "forged?"})

    deliveries = answer.json()["deliveries"]
    assert {d["status"] for d in deliveries} == {403}
    assert deliveries[-1]["gave_up"] is True
    assert setup.messages == []
