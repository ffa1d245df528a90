import asyncio

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.integration.harness import register


async def test_live_message_then_delivered_then_read_receipts(http, base_url):
    alice, bob = await register(http), await register(http)
    cid = await alice.private_with(bob)
    async with alice.stream(base_url) as a_stream, bob.stream(base_url) as b_stream:
        sent = await alice.send(cid, "hello bob")
        [got] = await b_stream.messages(1)  # acks it
        assert got["message_id"] == sent["message_id"]
        assert got["payload"]["text"] == "hello bob"
        assert got["sequence_number"] == 1
        delivered = await a_stream.next_of("message.status")
        assert delivered["data"] | {"at": None} == {
            "message_id": sent["message_id"],
            "conversation_id": cid,
            "recipient_id": bob.user_id,
            "channel": "internal",
            "status": "delivered",
            "at": None,
        }
        await bob.post(f"/v1/conversations/{cid}/read", {"up_to_sequence_number": 1})
        read = await a_stream.next_of("message.status")
        assert read["data"]["status"] == "read"


async def test_offline_recipient_gets_everything_on_connect(http, base_url):
    alice, bob = await register(http), await register(http)
    cid = await alice.private_with(bob)
    for i in range(5):
        await alice.send(cid, f"while you were away {i}")
    async with bob.stream(base_url) as s:
        got = await s.messages(5)
    assert [m["sequence_number"] for m in got] == [1, 2, 3, 4, 5]
    # acked: a new connection gets nothing old, only what comes next
    await asyncio.sleep(0.3)
    async with bob.stream(base_url) as s:
        await alice.send(cid, "new")
        [m] = await s.messages(1)
        assert m["sequence_number"] == 6


async def test_resume_returns_what_was_missed_in_order(http, base_url):
    alice, bob = await register(http), await register(http)
    cid = await alice.private_with(bob)
    for i in range(4):
        await alice.send(cid, f"m{i}")
    async with bob.stream(base_url) as s:
        await s.messages(4, ack=False)
        await s.send("resume", {"after": {cid: 2}})
        again = await s.messages(2, ack=False)
        assert [m["sequence_number"] for m in again] == [3, 4]
        resumed = await s.next_of("resumed")
        assert resumed["data"] == {cid: 4}


async def test_every_device_of_a_user_receives(http, base_url):
    alice, bob = await register(http), await register(http)
    cid = await alice.private_with(bob)
    async with (
        bob.stream(base_url) as phone,
        bob.stream(base_url) as laptop,
        alice.stream(base_url) as other_tab,
    ):
        sent = await alice.send(cid, "to all devices")
        for s in (phone, laptop):
            [m] = await s.messages(1, ack=False)
            assert m["message_id"] == sent["message_id"]
        [echo] = await other_tab.messages(1, ack=False)  # the sender's own devices too
        assert echo["message_id"] == sent["message_id"]


async def test_group_message_reaches_every_member(http, base_url):
    owner, *others = [await register(http) for _ in range(4)]
    r = await owner.post(
        "/v1/conversations", {"type": "group", "members": [u.user_id for u in others]}
    )
    cid = r.json()["conversation_id"]
    streams = [u.stream(base_url) for u in others]
    for s in streams:
        await s.__aenter__()
    try:
        sent = await owner.send(cid, "hello group")
        for s in streams:
            [m] = await s.messages(1)
            assert m["message_id"] == sent["message_id"]
        for _ in range(100):
            message = (await owner.get(f"/v1/messages/{sent['message_id']}")).json()
            if message["status"] == "delivered":
                break
            await asyncio.sleep(0.05)
        assert message["status"] == "delivered"
        assert {r for r in message["channel_delivery"]} == {u.user_id for u in others}
    finally:
        for s in streams:
            await s.__aexit__(None, None, None)


async def test_typing_reaches_the_other_member(http, base_url):
    alice, bob = await register(http), await register(http)
    cid = await alice.private_with(bob)
    async with alice.stream(base_url) as a, bob.stream(base_url) as b:
        await a.send("typing", {"conversation_id": cid})
        frame = await b.next_of("typing")
        assert frame["data"]["user_id"] == alice.user_id
        assert frame["data"]["expires_in"] > 0


async def test_bad_frames_get_clear_errors(http, base_url):
    alice = await register(http)
    async with alice.stream(base_url) as s:
        await s.send("dance", {})
        err = await s.next_of("error")
        assert "unknown frame type" in err["data"]["detail"]
        await s.send("ack", {"message_id": "nope"})
        err = await s.next_of("error")
        assert "message_id" in err["data"]["detail"]
        assert s.ws is not None
        await s.ws.send("{not json")
        with pytest.raises(ConnectionClosed) as closed:
            await s.next_frame()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1007


async def test_stream_refuses_bad_tokens(base_url):
    url = base_url.replace("http", "ws", 1) + "/v1/stream?access_token=forged"
    async with connect(url) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_stream_token_in_first_frame(http, base_url):
    alice = await register(http)
    async with connect(base_url.replace("http", "ws", 1) + "/v1/stream") as ws:
        await ws.send(
            orjson.dumps({"type": "auth", "data": {"access_token": alice.token}}).decode()
        )
        assert orjson.loads(await ws.recv())["type"] == "ready"


async def test_a_device_that_connects_later_catches_up_on_its_own_messages(http, base_url):
    alice, bob = await register(http), await register(http)
    cid = await alice.private_with(bob)
    sent = await alice.send(cid, "sent from the phone, laptop offline")
    async with alice.stream(base_url) as laptop:
        [m] = await laptop.messages(1, ack=False)
    assert m["message_id"] == sent["message_id"]


async def test_binary_frames_are_read_as_json_and_strangers_get_errors(http, base_url):
    alice, bob, eve = await register(http), await register(http), await register(http)
    cid = await alice.private_with(bob)
    async with eve.stream(base_url) as s:
        assert s.ws is not None
        await s.ws.send(orjson.dumps({"type": "ping", "data": {"n": 1}}))  # a binary frame
        assert (await s.next_of("pong"))["data"] == {"n": 1}
        await s.send("typing", {"conversation_id": cid})
        err = await s.next_of("error")
        assert "does not exist or you are not a member" in err["data"]["detail"]
        await s.send("resume", {"after": {cid: 0}})
        assert "not a member" in (await s.next_of("error"))["data"]["detail"]
