import asyncio
from uuid import uuid4

from tests.integration.harness import register


def text(t):
    return {"type": "text", "text": t}


async def test_send_returns_202_with_gap_free_sequence(http):
    alice, bob = await register(http), await register(http)
    cid = await alice.private_with(bob)
    sent = [await alice.send(cid, f"m{i}") for i in range(3)]
    assert [s["sequence_number"] for s in sent] == [1, 2, 3]
    assert all(s["status"] == "sent" and s["conversation_id"] == cid for s in sent)


async def test_same_message_id_is_idempotent_and_other_body_conflicts(http):
    alice, bob = await register(http), await register(http)
    cid = await alice.private_with(bob)
    mid = str(uuid4())
    first = await alice.post(
        f"/v1/conversations/{cid}/messages", {"message_id": mid, "payload": text("hi")}
    )
    again = await alice.post(
        f"/v1/conversations/{cid}/messages", {"message_id": mid, "payload": text("hi")}
    )
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert again.headers["idempotent-replayed"] == "true"
    other = await alice.post(
        f"/v1/conversations/{cid}/messages", {"message_id": mid, "payload": text("changed")}
    )
    assert other.status_code == 409
    assert other.headers["content-type"] == "application/problem+json"
    history = (await alice.get(f"/v1/conversations/{cid}/messages")).json()["items"]
    assert [m["payload"]["text"] for m in history] == ["hi"]


async def test_concurrent_retries_store_one_message(http):
    alice, bob = await register(http), await register(http)
    cid = await alice.private_with(bob)
    mid = str(uuid4())
    answers = await asyncio.gather(
        *[
            alice.post(
                f"/v1/conversations/{cid}/messages", {"message_id": mid, "payload": text("x")}
            )
            for _ in range(10)
        ]
    )
    assert {a.status_code for a in answers} == {202}
    assert len({a.json()["sequence_number"] for a in answers}) == 1
    assert len((await bob.get(f"/v1/conversations/{cid}/messages")).json()["items"]) == 1


async def test_bad_message_input_is_explained_and_not_stored(http):
    alice, bob = await register(http), await register(http)
    cid = await alice.private_with(bob)
    url = f"/v1/conversations/{cid}/messages"
    cases = [
        ({"message_id": "nope", "payload": text("x")}, "message_id"),
        ({"message_id": str(uuid4())}, "payload"),
        ({"message_id": str(uuid4()), "payload": {"type": "text", "text": 5}}, "text"),
        ({"message_id": str(uuid4()), "payload": text("")}, "non-empty"),
        ({"message_id": str(uuid4()), "payload": text("x" * 4097)}, "limit is 4096"),
        ({"message_id": str(uuid4()), "payload": {"type": "sticker"}}, "payload"),
        (
            {"message_id": str(uuid4()), "payload": text("x"), "reply_to_message_id": str(uuid4())},
            "reply_to",
        ),
    ]
    for body, hint in cases:
        r = await alice.post(url, body)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert hint in r.json()["detail"], (hint, r.json()["detail"])
    assert (await alice.get(url)).json()["items"] == []


async def test_history_pages_by_sequence_number(http):
    alice, bob = await register(http), await register(http)
    cid = await alice.private_with(bob)
    for i in range(1, 8):
        await alice.send(cid, f"m{i}")
    url = f"/v1/conversations/{cid}/messages"
    newest = (await bob.get(url, params={"limit": 3})).json()
    assert [m["sequence_number"] for m in newest["items"]] == [5, 6, 7]
    older = (await bob.get(url, params={"limit": 3, "cursor": newest["next_cursor"]})).json()
    assert [m["sequence_number"] for m in older["items"]] == [2, 3, 4]
    forward = (await bob.get(url, params={"after_seq": 2, "limit": 2})).json()
    assert [m["sequence_number"] for m in forward["items"]] == [3, 4]
    nxt = (await bob.get(url, params={"limit": 2, "cursor": forward["next_cursor"]})).json()
    assert [m["sequence_number"] for m in nxt["items"]] == [5, 6]
    assert (await bob.get(url, params={"limit": 101})).status_code == 422


async def test_message_status_moves_to_read_with_history(http):
    alice, bob = await register(http), await register(http)
    cid = await alice.private_with(bob)
    sent = await alice.send(cid, "read me")
    r = await bob.post(
        f"/v1/conversations/{cid}/read", {"up_to_sequence_number": sent["sequence_number"]}
    )
    assert r.status_code == 200
    assert r.json()["last_read_sequence_number"] == 1
    for _ in range(100):
        message = (await alice.get(f"/v1/messages/{sent['message_id']}")).json()
        if message["status"] == "read":
            break
        await asyncio.sleep(0.05)
    assert message["status"] == "read"
    assert message["channel_delivery"][bob.user_id]["internal"]["status"] == "read"
    assert [h["status"] for h in message["status_history"]] == ["sent", "read"]
    past = await bob.post(f"/v1/conversations/{cid}/read", {"up_to_sequence_number": 5})
    assert past.status_code == 422


async def test_message_of_another_conversation_is_not_found(http):
    alice, bob, eve = await register(http), await register(http), await register(http)
    cid = await alice.private_with(bob)
    sent = await alice.send(cid, "secret")
    assert (await eve.get(f"/v1/messages/{sent['message_id']}")).status_code == 404
    assert (await eve.get(f"/v1/messages/{uuid4()}")).status_code == 404


async def test_unsupported_channel_fails_explicitly(http):
    alice, bob = await register(http), await register(http)
    cid = await alice.private_with(bob)
    r = await alice.post(
        f"/v1/conversations/{cid}/messages",
        {
            "message_id": str(uuid4()),
            "payload": text("hi"),
            "target_channels": ["internal", "whatsapp", "signal"],
        },
    )
    assert r.status_code == 202
    assert r.json()["channels"] == {
        "internal": "queued",
        "whatsapp": "queued",
        "signal": "unavailable",
    }
    mid = r.json()["message_id"]
    for _ in range(100):
        m = (await alice.get(f"/v1/messages/{mid}")).json()
        channels = m["channel_delivery"][bob.user_id]
        if channels["whatsapp"]["status"] == channels["signal"]["status"] == "failed":
            break
        await asyncio.sleep(0.05)
    assert "no whatsapp identity" in channels["whatsapp"]["details"]["reason"]
    assert "no connector" in channels["signal"]["details"]["reason"]
    assert channels["internal"]["status"] == "sent"


async def test_sequence_numbers_beyond_64_bits_are_refused(http):
    alice, bob = await register(http), await register(http)
    cid = await alice.private_with(bob)
    huge = 2**70
    url = f"/v1/conversations/{cid}/messages"
    assert (await alice.get(url, params={"after_seq": huge})).status_code == 422
    assert (await alice.get(url, params={"before_seq": huge})).status_code == 422
    r = await alice.post(f"/v1/conversations/{cid}/read", {"up_to_sequence_number": huge})
    assert r.status_code == 422


async def test_an_oversized_body_is_refused_before_it_is_read(http):
    alice, bob = await register(http), await register(http)
    cid = await alice.private_with(bob)
    body = {"message_id": str(uuid4()), "payload": text("x"), "metadata": {"blob": "y" * (2 << 20)}}
    r = await alice.post(f"/v1/conversations/{cid}/messages", body)
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert (await alice.get(f"/v1/conversations/{cid}/messages")).json()["items"] == []


async def test_an_oversized_chunked_body_is_refused_too(http):
    alice, bob = await register(http), await register(http)
    cid = await alice.private_with(bob)

    async def chunks():
        yield b'{"message_id": "' + str(uuid4()).encode() + b'", "payload": {"type": "text", '
        for _ in range(40):
            yield b'"x": "' + b"y" * 65536 + b'", '
        yield b'"text": "hi"}}'

    r = await alice.http.post(
        f"/v1/conversations/{cid}/messages",
        content=chunks(),
        headers=alice.auth | {"content-type": "application/json"},
    )
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"


async def test_metadata_that_cannot_be_stored_is_refused(http):
    alice, bob = await register(http), await register(http)
    cid = await alice.private_with(bob)
    url = f"/v1/conversations/{cid}/messages"
    for metadata in ({"n": 2**70}, {"blob": "x" * 20_000}):
        r = await alice.post(
            url, {"message_id": str(uuid4()), "payload": text("x"), "metadata": metadata}
        )
        assert r.status_code == 422, r.text
        assert "metadata" in r.json()["detail"]
    r = await alice.post(
        url,
        {
            "message_id": str(uuid4()),
            "payload": {"type": "text", "text": "x", "metadata": {"n": -(2**70)}},
        },
    )
    assert r.status_code == 422
    assert (await alice.get(url)).json()["items"] == []
