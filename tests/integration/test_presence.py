"""Presence from stream sessions, pushed to contacts; typing indicators that run out."""

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.integration.harness import register, running_server, settings_for_tests


@pytest.fixture
async def base_url(tmp_path) -> AsyncIterator[str]:
    async with running_server(settings_for_tests(tmp_path, typing_seconds=1)) as url:
        yield url


async def _presence(user, *users) -> dict[str, dict[str, Any]]:
    r = await user.get("/v1/presence", params={"user_ids": ",".join(u.user_id for u in users)})
    assert r.status_code == 200, r.text
    return {s["user_id"]: s for s in r.json()}


async def test_online_while_either_device_is_connected_and_contacts_are_told(
    http: httpx.AsyncClient, base_url: str
):
    alice, bob, stranger = await register(http), await register(http), await register(http)
    await alice.private_with(bob)
    assert not (await _presence(alice, bob))[bob.user_id]["online"]
    async with alice.stream(base_url) as contact, stranger.stream(base_url) as outsider:
        phone = await bob.stream(base_url).__aenter__()
        online = await contact.next_of("presence")
        assert online["data"]["user_id"] == bob.user_id and online["data"]["online"] is True
        async with bob.stream(base_url):  # the laptop
            await phone.__aexit__()
            assert (await _presence(alice, bob))[bob.user_id]["online"]
        # Both gone: one `offline` reaches the contact, and only then is the last one seen.
        offline = await contact.next_of("presence")
        assert offline["data"]["user_id"] == bob.user_id and offline["data"]["online"] is False
        [state] = (await _presence(alice, bob)).values()
        assert state["online"] is False
        assert datetime.fromisoformat(state["last_seen"]) == datetime.fromisoformat(
            offline["data"]["last_seen"]
        )
        # Someone who shares no conversation with bob hears nothing of him: the next frame
        # the outsider gets is the answer to its own ping.
        await outsider.send("ping", {"n": 1})
        assert (await outsider.next_frame())["type"] == "pong"


async def test_typing_runs_out_by_itself_and_stops_on_request(
    http: httpx.AsyncClient, base_url: str
):
    alice, bob = await register(http), await register(http)
    cid = await alice.private_with(bob)
    async with alice.stream(base_url) as a, bob.stream(base_url) as b:
        await b.send("typing", {"conversation_id": cid})
        started = await a.next_of("typing")
        assert started["data"] == {
            "conversation_id": cid,
            "user_id": bob.user_id,
            "state": "started",
            "expires_in": 1,
        }
        # Bob says nothing more: the server stops it for him after `expires_in`.
        stopped = await a.next_of("typing")
        assert stopped["data"]["state"] == "stopped" and stopped["data"]["expires_in"] == 0

        await b.send("typing", {"conversation_id": cid})
        assert (await a.next_of("typing"))["data"]["state"] == "started"
        await b.send("typing", {"conversation_id": cid, "state": "stopped"})
        assert (await a.next_of("typing"))["data"]["state"] == "stopped"

        await b.send("typing", {"conversation_id": cid, "state": "sleeping"})
        error = await b.next_of("error")
        assert "state" in error["data"]["detail"]
