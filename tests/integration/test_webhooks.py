"""Client webhooks through a real server (embedded profile, its own `webhooks` worker) and real
receivers that verify every signature with `standardwebhooks`. The retry schedule is scaled
down by settings; the production schedule is walked on a fake clock in
tests/services/test_webhook_dispatcher.py."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.harness import User, register, running_server, settings_for_tests
from tests.webhook_receiver import Receiver

ALL_EVENTS = [
    "message.sent",
    "message.delivered",
    "message.read",
    "message.failed",
    "conversation.created",
    "file.uploaded",
]


def webhook_settings(data_dir: Path, schedule: tuple[float, ...] = (0.2, 0.2, 0.2)) -> Any:
    return settings_for_tests(
        data_dir, webhook_allow_private_urls=True, webhook_retry_schedule_seconds=schedule
    )


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        running_server(webhook_settings(tmp_path)) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as http,
    ):
        yield http


async def subscribe(user: User, url: str, events: list[str]) -> dict[str, Any]:
    r = await user.post("/v1/webhooks", {"url": url, "events": events})
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 30.0) -> Any:
    """`check()`'s first truthy answer, asked every 50 ms for up to `timeout` seconds."""
    async with asyncio.timeout(timeout):
        for _ in itertools.count():
            if answer := await check():
                return answer
            await asyncio.sleep(0.05)
    raise AssertionError("unreachable")


async def deliveries(user: User, webhook_id: str, **params: Any) -> list[dict[str, Any]]:
    r = await user.get(f"/v1/webhooks/{webhook_id}/deliveries", params=params)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_each_event_reaches_its_subscribers_once_after_retries(
    server: httpx.AsyncClient,
) -> None:
    alice, bob, carol = [await register(server) for _ in range(3)]
    async with (
        Receiver(fail_first=2) as alices,
        Receiver() as bobs,
        Receiver() as carols,
    ):
        alice_hook = await subscribe(alice, alices.url, ALL_EVENTS)
        bob_hook = await subscribe(bob, bobs.url, ["message.sent"])
        carol_hook = await subscribe(carol, carols.url, ALL_EVENTS)
        alices.secrets = [alice_hook["secret"]]
        bobs.secrets = [bob_hook["secret"]]
        carols.secrets = [carol_hook["secret"]]

        cid = await alice.private_with(bob)
        async with bob.stream(str(server.base_url)) as stream:
            sent = await alice.send(cid, "hello over webhooks")
            await stream.messages(1)  # acked: message.delivered
        r = await bob.post(f"/v1/conversations/{cid}/read", {"up_to_sequence_number": 1})
        assert r.status_code == 200

        expected = {"conversation.created", "message.sent", "message.delivered", "message.read"}
        await alices.until(lambda r: {s.payload["type"] for s in r.successes()} == expected)
        await bobs.until(lambda r: len(r.successes()) == 1)

    # One success per event, after two refusals, every request signed with the right secret.
    assert alices.unverified() == [] and bobs.unverified() == []
    by_type = {s.payload["type"]: s for s in alices.successes()}
    assert len(alices.successes()) == 4
    for success in alices.successes():
        tries = [r for r in alices.received if r.msg_id == success.msg_id]
        assert [t.status for t in tries] == [500, 500, 200]
        assert {t.body for t in tries} == {success.body}
    message = by_type["message.sent"].payload["data"]
    assert message["message_id"] == sent["message_id"]
    assert message["payload"] == {"type": "text", "text": "hello over webhooks", "metadata": {}}
    assert by_type["message.delivered"].payload["data"]["recipient_id"] == bob.user_id
    assert by_type["message.read"].payload["data"]["reader_id"] == bob.user_id
    assert by_type["conversation.created"].payload["data"]["conversation_id"] == cid
    (bob_success,) = bobs.successes()
    assert bob_success.payload["data"]["message_id"] == sent["message_id"]

    # The log: every attempt with its status code and timing; the last one succeeded.
    log = await eventually(lambda: _all_succeeded(alice, alice_hook["webhook_id"], 4))
    assert {d["event_type"] for d in log} == expected
    for delivery in log:
        assert delivery["next_attempt_at"] is None
        assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 500, 200]
        assert all(a["duration_ms"] >= 0 for a in delivery["attempt_log"])
        assert delivery["delivery_id"] in {r.msg_id for r in alices.received}
    # Carol is in no conversation: her webhook saw nothing (the events were all fanned out,
    # in order, before alice's last one).
    assert carols.received == []
    assert await deliveries(carol, carol_hook["webhook_id"]) == []


async def _all_succeeded(user: User, webhook_id: str, count: int) -> list[dict[str, Any]]:
    """The deliveries once `count` succeeded (the receiver answers before the dispatcher
    records its answer), else nothing."""
    done = await deliveries(user, webhook_id, state="succeeded")
    return done if len(done) == count else []


async def test_dead_letters_are_listed_and_replayed(server: httpx.AsyncClient) -> None:
    alice, bob = await register(server), await register(server)
    receiver = Receiver()  # down for now
    hook = await subscribe(alice, receiver.url, ["message.sent"])
    receiver.secrets = [hook["secret"]]
    cid = await alice.private_with(bob)
    await alice.send(cid, "into the void")

    dead = await eventually(lambda: deliveries(alice, hook["webhook_id"], state="dead"))
    (letter,) = dead
    assert len(letter["attempt_log"]) == 4  # the first try and three retries
    assert all(a["status_code"] is None and a["error"] for a in letter["attempt_log"])

    async with receiver:
        url = f"/v1/webhooks/{hook['webhook_id']}/deliveries/{letter['delivery_id']}/replay"
        r = await alice.post(url)
        assert r.status_code == 202, r.text
        assert r.json()["state"] == "pending"
        await receiver.until(lambda r: len(r.successes()) == 1)
        again = await alice.post(url)
        assert again.status_code in (202, 409)  # 409 while still pending
    (success,) = receiver.successes()
    assert success.msg_id == letter["delivery_id"]  # the same webhook-id as every try
    assert receiver.unverified() == []


async def test_deliveries_survive_a_restart(tmp_path: Path) -> None:
    settings = webhook_settings(tmp_path, schedule=(0.3,) * 100)
    receiver = Receiver()  # down while the first server runs
    async with running_server(settings) as url, httpx.AsyncClient(base_url=url) as http:
        alice, bob = await register(http), await register(http)
        hook = await subscribe(alice, receiver.url, ["message.sent"])
        receiver.secrets = [hook["secret"]]
        cid = await alice.private_with(bob)
        sent = await alice.send(cid, "keep me")
        await eventually(
            lambda: _attempted(alice, hook["webhook_id"]),
        )
        token = alice.token
    async with (
        receiver,
        running_server(settings) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        await receiver.until(lambda r: len(r.successes()) == 1)
        alice.http = http
        alice.token = token
        done = await eventually(lambda: _all_succeeded(alice, hook["webhook_id"], 1))
    assert receiver.successes()[0].payload["data"]["message_id"] == sent["message_id"]
    assert done[0]["attempts"] >= 2  # failed ones before the restart, the success after


async def _attempted(user: User, webhook_id: str) -> bool:
    return any(d["attempts"] for d in await deliveries(user, webhook_id))


async def test_rotation_signs_with_both_secrets(server: httpx.AsyncClient) -> None:
    alice, bob = await register(server), await register(server)
    async with Receiver() as receiver:
        hook = await subscribe(alice, receiver.url, ["message.sent"])
        r = await alice.post(
            f"/v1/webhooks/{hook['webhook_id']}/rotate-secret", {"overlap_seconds": 3600}
        )
        assert r.status_code == 200, r.text
        rotated = r.json()
        assert rotated["secret"] != hook["secret"] and rotated["previous_secret_expires_at"]
        receiver.secrets = [hook["secret"], rotated["secret"]]
        await alice.send(await alice.private_with(bob), "signed twice")
        await receiver.until(lambda r: len(r.received) == 1)
    (got,) = receiver.received
    assert got.verified_by == [hook["secret"], rotated["secret"]]


async def test_registration_rules(tmp_path: Path) -> None:
    # The production default: private addresses are refused.
    async with (
        running_server(settings_for_tests(tmp_path)) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        alice, bob = await register(http), await register(http)
        for target, why in [
            ("http://127.0.0.1:9/hook", "loopback"),
            ("http://10.1.2.3/hook", "private"),
            ("http://169.254.169.254/latest/meta-data", "link-local"),
            ("http://[::1]/hook", "loopback"),
            ("http://[::ffff:192.168.0.1]/hook", "private"),
            ("http://0.0.0.0/hook", "unspecified"),
            ("ftp://93.184.215.14/hook", "http or https"),
            ("https://user:pw@93.184.215.14/hook", "credentials"),
            ("https:///nohost", "no host"),
        ]:
            r = await alice.post("/v1/webhooks", {"url": target, "events": ["message.sent"]})
            assert r.status_code == 422, (target, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert why in r.json()["detail"], (target, r.json())
        r = await alice.post("/v1/webhooks", {"url": "https://93.184.215.14/", "events": ["x"]})
        assert r.status_code == 422 and "unknown event 'x'" in r.json()["detail"]
        r = await alice.post("/v1/webhooks", {"url": "https://93.184.215.14/", "events": []})
        assert r.status_code == 422

        public = "https://93.184.215.14/hook"
        hook = await subscribe(alice, public, ["message.read", "message.read", "file.uploaded"])
        assert hook["events"] == ["message.read", "file.uploaded"]
        assert hook["secret"].startswith("whsec_")
        listed = (await alice.get("/v1/webhooks")).json()["items"]
        assert [h["webhook_id"] for h in listed] == [hook["webhook_id"]]
        assert "secret" not in listed[0]
        assert (await bob.get(f"/v1/webhooks/{hook['webhook_id']}")).status_code == 404
        assert (await bob.delete(f"/v1/webhooks/{hook['webhook_id']}")).status_code == 404
        assert (await http.get("/v1/webhooks")).status_code == 401
        r = await alice.post(
            f"/v1/webhooks/{hook['webhook_id']}/deliveries/{hook['webhook_id']}/replay"
        )
        assert r.status_code == 404
        r = await alice.get(f"/v1/webhooks/{hook['webhook_id']}/deliveries", params={"cursor": "x"})
        assert r.status_code == 422
        r = await alice.post(f"/v1/webhooks/{hook['webhook_id']}/rotate-secret")
        assert r.status_code == 200 and r.json()["secret"] != hook["secret"]
        r = await alice.post(
            f"/v1/webhooks/{hook['webhook_id']}/rotate-secret", {"overlap_seconds": 8 * 86400}
        )
        assert r.status_code == 422 and "overlap" in r.json()["detail"]
        assert (await alice.delete(f"/v1/webhooks/{hook['webhook_id']}")).status_code == 204
        assert (await alice.get(f"/v1/webhooks/{hook['webhook_id']}")).status_code == 404
