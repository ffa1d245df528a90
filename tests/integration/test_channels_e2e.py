"""End to end on the platform fakes: a contact writes in on each channel, the agent answers,
the platform's receipts come back; duplicated and reordered webhooks; bad signatures."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import httpx
import pytest

from tests.integration.channel_rig import ACCOUNT, APP_SECRET, CHANNELS, Rig, eventually, rig

CONTACTS = {
    "whatsapp": "16315551181",
    "telegram": "777001",
    "messenger": "PSID1",
    "instagram": "IGSID1",
}


async def one_conversation(r: Rig) -> str:
    conversations = await eventually(r.conversations)
    assert len(conversations) == 1
    return str(conversations[0]["conversation_id"])


async def channel_status(r: Rig, message_id: str) -> dict[str, Any]:
    m = (await r.agent.get(f"/v1/messages/{message_id}")).json()
    (recipient,) = m["channel_delivery"]  # the contact
    return dict(m["channel_delivery"][recipient].get(r.channel) or {})


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_contact_writes_in_the_agent_answers_and_receipts_come_back(channel, tmp_path):
    contact = CONTACTS[channel]
    async with rig(channel, tmp_path) as r:
        await r.write_in(contact, "hello from the contact")
        cid = await one_conversation(r)
        assert await r.texts(cid) == ["hello from the contact"]

        reply = await r.agent.send(cid, "hi, how can I help?")
        (sent,) = await eventually(r.sends)
        assert (sent["to"], sent["text"]) == (contact, "hi, how can I help?")
        mid = reply["message_id"]
        status = await eventually(lambda: channel_status(r, mid))
        assert status["status"] == "sent"
        platform_id = status["details"]["platform_message_id"]

        if channel == "whatsapp":
            wamid = sent["response"]["messages"][0]["id"]
            assert platform_id == wamid
            await r.control("status", {"message_id": wamid, "status": "delivered"})
            await r.control("status", {"message_id": wamid, "status": "read"})
        elif channel == "messenger":
            await r.control("status", {"recipient_id": contact, "status": "delivered"})
            await r.control("status", {"recipient_id": contact, "status": "read"})
        elif channel == "instagram":
            await r.control("status", {"recipient_id": contact, "status": "read"})
        if channel == "telegram":
            # Bots get no receipts: sent is where a Telegram delivery ends.
            assert platform_id.startswith(f"{contact}:")
            return

        async def read() -> dict[str, Any] | None:
            s = await channel_status(r, mid)
            return s if s["status"] == "read" else None

        await eventually(read)
        m = (await r.agent.get(f"/v1/messages/{mid}")).json()
        steps = [h["status"] for h in m["status_history"] if h.get("channel") == channel]
        assert steps == (
            ["sent", "delivered", "read"] if channel != "instagram" else ["sent", "read"]
        )


async def test_a_read_watermark_covers_every_earlier_message(tmp_path):
    async with rig("messenger", tmp_path) as r:
        await r.write_in("PSID9", "hi")
        cid = await one_conversation(r)
        mids = [(await r.agent.send(cid, f"answer {i}"))["message_id"] for i in range(3)]
        await eventually(lambda: _count(r.sends(), 3))
        await r.control("status", {"recipient_id": "PSID9", "status": "read"})

        async def all_read() -> bool:
            statuses = [(await channel_status(r, m)).get("status") for m in mids]
            return statuses == ["read"] * 3

        await eventually(all_read)


async def _count(calls: Any, n: int) -> bool:
    return len(await calls) >= n


@pytest.mark.parametrize("channel", CHANNELS)
async def test_duplicated_and_reordered_webhooks_make_one_message_each_in_order(channel, tmp_path):
    contact = CONTACTS[channel]
    async with rig(channel, tmp_path) as r:
        events = [r.inbound(contact, f"m{i}") for i in range(6)]
        await r.control("batch", {"events": events, "order": "reverse", "duplicate": True})
        cid = await one_conversation(r)

        async def six() -> list[str] | None:
            texts = await r.texts(cid)
            return texts if len(texts) >= 6 else None

        assert await eventually(six) == [f"m{i}" for i in range(6)]


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_bad_signature_is_refused_and_nothing_is_stored(channel, tmp_path):
    async with rig(channel, tmp_path) as r:
        if channel == "telegram":
            await r.fake.post(
                "/bot123456:rig-bot-secret/setWebhook",
                json={"url": r.webhook_url, "secret_token": "not-the-secret"},
            )
        else:
            await r.control("config", {"app_secret": "not-the-secret"}, method="PUT")
        answer = await r.write_in(CONTACTS[channel], "forged")
        assert {d["status"] for d in answer["deliveries"]} == {401}
        async with httpx.AsyncClient(base_url=r.api) as http:
            unsigned = await http.post(r.webhook_url, content=b'{"object":"page","entry":[]}')
        assert unsigned.status_code == 401
        assert unsigned.headers["content-type"] == "application/problem+json"
        assert await r.conversations() == []


@pytest.mark.parametrize(("channel", "expected"), [("whatsapp", 400), ("telegram", 200)])
async def test_malformed_but_signed_json_is_answered_as_the_platform_expects(
    channel, expected, tmp_path
):
    async with rig(channel, tmp_path) as r:
        body = b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {"messages": [{"id": 1}]}}]}]}'
        headers = (
            {"x-telegram-bot-api-secret-token": "rig-secret-token"}
            if channel == "telegram"
            else {
                "x-hub-signature-256": "sha256="
                + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
            }
        )
        async with httpx.AsyncClient(base_url=r.api) as http:
            answer = await http.post(r.webhook_url, content=body, headers=headers)
        assert answer.status_code == expected
        assert await r.conversations() == []


async def test_the_verification_handshake(tmp_path):
    async with rig("messenger", tmp_path) as r:
        wrong = await r.control(
            "subscribe", {"callback_url": r.webhook_url, "verify_token": "guess"}
        )
        assert not wrong["verified"] and wrong["status"] == 403
        async with httpx.AsyncClient(base_url=r.api) as http:
            unknown = await http.get(f"/v1/channels/messenger/{ACCOUNT}x/webhook")
        assert unknown.status_code == 404
