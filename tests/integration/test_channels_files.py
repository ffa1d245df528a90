"""Files to external channels: within the channel's limit the platform gets a signed link to
fetch; over it, the contact gets the link as text and the status history says why."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from tests.integration import tus
from tests.integration.channel_rig import Rig, eventually, rig
from tests.integration.test_channels_e2e import channel_status, one_conversation

CONTACT = "16315551181"
PUBLIC = "https://chat.example.com"
MIB = 1 << 20


async def send_file(r: Rig, cid: str, data: bytes, filename: str, filetype: str) -> str:
    file_id = await tus.upload(r.agent, cid, data, filename=filename, filetype=filetype)
    sent = await r.agent.post(
        f"/v1/conversations/{cid}/messages",
        {"message_id": str(uuid4()), "payload": {"type": "file", "file_id": file_id}},
    )
    assert sent.status_code == 202, sent.text
    return str(sent.json()["message_id"])


async def whatsapp_sends(r: Rig) -> list[dict[str, Any]]:
    calls = await r.control("calls", method="GET")
    return [c["body"] for c in calls if c["status"] == 200 and c["path"].endswith("/messages")]


async def test_a_file_within_the_limit_goes_as_media_and_a_larger_one_as_a_link(tmp_path):
    async with rig("whatsapp", tmp_path, public_base_url=PUBLIC) as r:
        await r.write_in(CONTACT, "send me the report")
        cid = await one_conversation(r)

        report = await send_file(r, cid, b"%PDF-1.7 " * 1000, "report.pdf", "application/pdf")
        (document,) = await eventually(lambda: whatsapp_sends(r))
        assert document["type"] == "document"
        link = document["document"]["link"]
        assert link.startswith(f"{PUBLIC}/v1/files/") and "signature=" in link
        assert document["document"]["filename"] == "report.pdf"
        status = await eventually(lambda: channel_status(r, report))
        assert status["status"] == "sent" and "as" not in status["details"]

        # WhatsApp takes images up to 5 MiB: a larger one goes as a link in a text.
        photo = await send_file(r, cid, b"\x89PNG" + bytes(5 * MIB), "big.png", "image/png")

        async def two() -> list[dict[str, Any]] | None:
            sends = await whatsapp_sends(r)
            return sends if len(sends) == 2 else None

        text = (await eventually(two))[1]
        assert text["type"] == "text"
        assert text["text"]["body"].startswith(
            "big.png (5.0 MiB): https://chat.example.com/v1/files/"
        )
        m = (await r.agent.get(f"/v1/messages/{photo}")).json()
        (step,) = [h for h in m["status_history"] if h.get("channel") == "whatsapp"]
        assert step["status"] == "sent"
        assert step["details"]["as"] == "link"
        assert "up to 5.0 MiB" in step["details"]["reason"]


async def test_without_a_public_base_url_a_file_fails_with_the_reason(tmp_path):
    async with rig("whatsapp", tmp_path) as r:
        await r.write_in(CONTACT, "hi")
        cid = await one_conversation(r)
        message = await send_file(r, cid, b"hello", "a.txt", "text/plain")

        async def failed() -> dict[str, Any] | None:
            s = await channel_status(r, message)
            return s if s.get("status") == "failed" else None

        status = await eventually(failed)
        assert "CHAT4ALL_PUBLIC_BASE_URL" in status["details"]["reason"]
        assert await whatsapp_sends(r) == []
