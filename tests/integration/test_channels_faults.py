"""Faults on the platform fakes: a 429 storm and a 5xx outage during a burst of 1,000 outbound
messages; a permanent failure, its dead letter and its replay."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.integration.channel_rig import ADMIN_TOKEN, Rig, eventually, rig

CONVERSATIONS = 10
PER_CONVERSATION = 100


async def contacts_write_in(r: Rig, contacts: list[str]) -> dict[str, str]:
    """Each contact writes in once; their conversation ids, by contact."""
    for contact in contacts:
        await r.write_in(contact, "hello")
    conversations = await eventually(
        lambda: _at_least(r.conversations(), len(contacts)), timeout=60
    )
    by_contact: dict[str, str] = {}
    for c in conversations:
        m = (await r.agent.get(f"/v1/conversations/{c['conversation_id']}")).json()
        contact_user = next(x["user_id"] for x in m["members"] if x["user_id"] != r.agent.user_id)
        by_contact[contact_user] = str(c["conversation_id"])
    return by_contact


async def dead_letters(r: Rig) -> list[Any]:
    answer = await r.agent.http.get(
        "/v1/admin/dead-letters",
        params={"limit": 100},
        headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert answer.status_code == 200, answer.text
    found: list[Any] = answer.json()
    return found


async def _at_least(items: Any, n: int) -> Any:
    found = await items
    return found if len(found) >= n else None


@pytest.mark.parametrize(
    ("channel", "fault"),
    [
        ("whatsapp", {"count": 150, "status": 429, "code": 130429, "retry_after": 0}),
        ("messenger", {"count": 150, "status": 400, "code": 613}),
        ("telegram", {"count": 60, "status": 500}),
    ],
    ids=["whatsapp-429-storm", "messenger-rate-limit", "telegram-5xx-outage"],
)
async def test_a_burst_of_1000_survives_a_fault_in_order(channel, fault, tmp_path):
    contacts = [str(700000 + i) for i in range(CONVERSATIONS)]  # WhatsApp ids are digits
    # A budget of about a minute of retries per message: longer than the fault lasts.
    async with rig(channel, tmp_path, delivery_attempts=300) as r:
        await contacts_write_in(r, contacts)
        await r.control("fail-next", fault)

        async def burst(cid: str) -> None:
            for i in range(PER_CONVERSATION):
                await r.agent.send(cid, f"{cid[:8]}-{i:03d}")

        conversations = [c["conversation_id"] for c in await r.conversations()]
        await asyncio.gather(*(burst(cid) for cid in conversations))

        total = CONVERSATIONS * PER_CONVERSATION

        async def settled() -> tuple[list[Any], list[Any]] | None:
            sends, letters = await r.sends(), await dead_letters(r)
            return (sends, letters) if len(sends) + len(letters) >= total else None

        sends, letters = await eventually(settled, timeout=240)
        # The fault ended within the retry budget: everything went out, nothing dead-lettered.
        assert [d["reason"] for d in letters] == []
        assert len(sends) == total  # each once
        calls = await r.control("calls", method="GET")
        assert sum(1 for c in calls if c["status"] >= 400) == fault["count"]
        by_contact: dict[str, list[str]] = {}
        for s in sends:
            by_contact.setdefault(s["to"], []).append(s["text"])
        assert sorted(by_contact) == sorted(contacts)
        for texts in by_contact.values():
            assert texts == sorted(texts)  # per conversation, in order
            assert len(texts) == PER_CONVERSATION


async def test_a_permanent_failure_is_dead_lettered_with_its_reason_and_replayed(tmp_path):
    async with rig("whatsapp", tmp_path) as r:
        await r.write_in("15550001", "hello")
        (conversation,) = await eventually(r.conversations)
        cid = conversation["conversation_id"]
        await r.control("fail-next", {"count": 1, "status": 400, "code": 131026})
        mid = (await r.agent.send(cid, "undeliverable at first"))["message_id"]

        (letter,) = await eventually(lambda: dead_letters(r))
        assert letter["message_id"] == mid
        assert "131026" in letter["reason"]
        m = (await r.agent.get(f"/v1/messages/{mid}")).json()
        (contact,) = m["channel_delivery"]
        failed = m["channel_delivery"][contact]["whatsapp"]
        assert failed["status"] == "failed" and "131026" in failed["details"]["reason"]
        assert m["channel_delivery"][contact]["internal"]["status"] == "sent"  # not blocked

        forbidden = await r.agent.http.get("/v1/admin/dead-letters", headers=r.agent.auth)
        assert forbidden.status_code == 403

        admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
        replay = await r.agent.http.post(
            f"/v1/admin/dead-letters/{letter['id']}/replay", headers=admin
        )
        assert replay.status_code == 202, replay.text
        sends = await eventually(r.sends)
        assert [s["text"] for s in sends] == ["undeliverable at first"]
        assert await dead_letters(r) == []  # replayed letters leave the list


async def test_a_closed_window_fails_the_message_with_the_platforms_reason(tmp_path):
    """WhatsApp takes the call, then reports 131047 in a `failed` status webhook."""
    async with rig("whatsapp", tmp_path) as r:
        await r.write_in("15550002", "hello")
        (conversation,) = await eventually(r.conversations)
        await r.control("window", {"wa_id": "15550002", "open": False})
        mid = (await r.agent.send(conversation["conversation_id"], "too late"))["message_id"]

        async def failed() -> dict[str, Any] | None:
            m = (await r.agent.get(f"/v1/messages/{mid}")).json()
            (contact,) = m["channel_delivery"]
            wa = m["channel_delivery"][contact].get("whatsapp") or {}
            return wa if wa.get("status") == "failed" else None

        assert "131047" in (await eventually(failed))["details"]["error"]
