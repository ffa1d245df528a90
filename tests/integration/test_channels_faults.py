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


async def _at_least(items: Any, n: int) -> Any:
    found = await items
    return found if len(found) >= n else None


@pytest.mark.parametrize(
    ("channel", "fault"),
    [
        ("whatsapp", {"count": 300, "status": 429, "code": 130429, "retry_after": 0}),
        ("messenger", {"count": 300, "status": 400, "code": 613}),
        ("telegram", {"count": 150, "status": 500}),
    ],
    ids=["whatsapp-429-storm", "messenger-rate-limit", "telegram-5xx-outage"],
)
async def test_a_burst_of_1000_survives_a_fault_in_order(channel, fault, tmp_path):
    contacts = [str(700000 + i) if channel == "telegram" else f"c{i}" for i in range(CONVERSATIONS)]
    async with rig(channel, tmp_path) as r:
        await contacts_write_in(r, contacts)
        await r.control("fail-next", fault)

        async def burst(cid: str) -> None:
            for i in range(PER_CONVERSATION):
                await r.agent.send(cid, f"{cid[:8]}-{i:03d}")

        conversations = [c["conversation_id"] for c in await r.conversations()]
        await asyncio.gather(*(burst(cid) for cid in conversations))

        total = CONVERSATIONS * PER_CONVERSATION
        sends = await eventually(lambda: _at_least(r.sends(), total), timeout=240)
        letters = (
            await r.agent.http.get(
                "/v1/admin/dead-letters", headers={"authorization": f"Bearer {ADMIN_TOKEN}"}
            )
        ).json()
        assert letters == []  # the fault ended within the retry budget: all went out
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
        await r.control("window", {"wa_id": "15550001", "open": False})
        mid = (await r.agent.send(cid, "after the window closed"))["message_id"]
        admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}

        async def letters() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = (
                await r.agent.http.get("/v1/admin/dead-letters", headers=admin)
            ).json()
            return found

        (letter,) = await eventually(letters)
        assert letter["message_id"] == mid
        assert "131047" in letter["reason"]
        m = (await r.agent.get(f"/v1/messages/{mid}")).json()
        (contact,) = m["channel_delivery"]
        failed = m["channel_delivery"][contact]["whatsapp"]
        assert failed["status"] == "failed" and "131047" in failed["details"]["reason"]
        assert m["channel_delivery"][contact]["internal"]["status"] == "sent"  # not blocked

        forbidden = await r.agent.http.get("/v1/admin/dead-letters", headers=r.agent.auth)
        assert forbidden.status_code == 403

        await r.control("window", {"wa_id": "15550001", "open": True})
        replay = await r.agent.http.post(
            f"/v1/admin/dead-letters/{letter['id']}/replay", headers=admin
        )
        assert replay.status_code == 202, replay.text
        sends = await eventually(r.sends)
        assert [s["text"] for s in sends] == ["after the window closed"]
        assert await letters() == []  # replayed letters leave the list
