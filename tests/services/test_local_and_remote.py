"""The same service-level tests on the services in process and on their gRPC clients (the
`side` fixture): the same answers, and the same domain errors with the same details."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID, uuid4

import pytest

from chat4all.domain.conversations import ConversationType, Role
from chat4all.domain.errors import (
    AlreadyExists,
    Forbidden,
    IdempotencyConflict,
    InvalidInput,
    LimitExceeded,
    NotFound,
    Unauthenticated,
)
from chat4all.domain.messages import Payload, PayloadType
from chat4all.services.frames import frame, message_view
from chat4all.services.interfaces import EventStream, Frame, Services

PASSWORD = "long password"


def text(body: str, **metadata: Any) -> Payload:
    return Payload(PayloadType.TEXT, body, metadata=metadata)


async def signed_up(services: Services, name: str) -> UUID:
    user = await services.auth.register(name, f"{name}@example.com", PASSWORD)
    return user.user_id


async def private(services: Services, a: UUID, b: UUID) -> UUID:
    view, _ = await services.conversations.create(a, ConversationType.PRIVATE, [b])
    return view.conversation.conversation_id


async def next_of(stream: EventStream, kind: str, timeout: float = 10.0) -> Frame:
    async def find() -> Frame:
        async for event in stream:
            if event["type"] == kind:
                return event
        raise AssertionError(f"the stream ended before a {kind} frame")

    return await asyncio.wait_for(find(), timeout)


# -- auth


async def test_register_sign_in_and_who_am_i(side):
    auth = side.services.auth
    user = await auth.register("alice", "Alice@Example.com", PASSWORD)
    assert (user.username, user.email) == ("alice", "alice@example.com")
    tokens = await auth.login("alice", PASSWORD)
    assert tokens.expires_in == 900
    principal = await auth.authenticate(tokens.access_token)
    assert principal.user_id == user.user_id
    me = await auth.get_user(user.user_id)
    assert (me.user_id, me.username, me.email, me.created_at) == (
        user.user_id,
        "alice",
        "alice@example.com",
        user.created_at,
    )
    assert await auth.user_id_of("alice") == user.user_id


async def test_auth_errors(side):
    auth = side.services.auth
    await auth.register("bob", "bob@example.com", PASSWORD)
    with pytest.raises(AlreadyExists, match="taken"):
        await auth.register("bob", "bob2@example.com", PASSWORD)
    with pytest.raises(InvalidInput, match="password must be"):
        await auth.register("carol", "carol@example.com", "short")
    with pytest.raises(Unauthenticated, match="wrong username or password"):
        await auth.login("bob", "not the password")
    with pytest.raises(Unauthenticated, match="not valid"):
        await auth.authenticate("not.a.token")
    with pytest.raises(NotFound, match="no user is called 'nobody'"):
        await auth.user_id_of("nobody")
    with pytest.raises(Unauthenticated, match="no longer exists"):
        await auth.get_user(uuid4())


async def test_refresh_rotates_and_logout_revokes(side):
    auth = side.services.auth
    await auth.register("dave", "dave@example.com", PASSWORD)
    first = await auth.login("dave", PASSWORD)
    second = await auth.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    with pytest.raises(Unauthenticated, match="already used"):
        await auth.refresh(first.refresh_token)  # a rotated token revokes its session
    with pytest.raises(Unauthenticated):
        await auth.refresh(second.refresh_token)

    third = await auth.login("dave", PASSWORD)
    principal = await auth.authenticate(third.access_token)
    await auth.logout(principal, third.refresh_token)
    with pytest.raises(Unauthenticated, match="revoked"):
        await auth.authenticate(third.access_token)
    with pytest.raises(Unauthenticated):
        await auth.refresh(third.refresh_token)


# -- conversations and membership


async def test_conversations_and_their_members(side):
    s = side.services
    alice, bob, carol = [await signed_up(s, n) for n in ("alice", "bob", "carol")]
    metadata = {"topic": "plans", "big": 2**63 - 1, "nested": {"list": [1, 2.5, None]}}
    group, created = await s.conversations.create(alice, ConversationType.GROUP, [bob], metadata)
    assert created
    gid = group.conversation.conversation_id
    assert group.conversation.metadata == metadata
    assert {(m.user_id, m.role) for m in group.members} == {
        (alice, Role.OWNER),
        (bob, Role.MEMBER),
    }

    cid = await private(s, alice, bob)
    again, created = await s.conversations.create(bob, ConversationType.PRIVATE, [alice])
    assert (again.conversation.conversation_id, created) == (cid, False)

    await s.messages.send(alice, gid, uuid4(), text("hello group"))
    listed = await s.conversations.for_user(bob)
    assert [v.conversation.conversation_id for v in listed] == [gid, cid]  # newest first
    assert listed[0].unread_count == 1
    assert listed[0].summary is not None
    assert listed[0].summary.last_message is not None
    assert listed[0].summary.last_message["text"] == "hello group"
    assert [m.user_id for m in listed[0].members] == [bob]
    # The same view as the services in process give.
    assert listed == await side.platform.conversations.for_user(bob)
    assert await s.conversations.get(bob, gid) == await side.platform.conversations.get(bob, gid)

    member = await s.conversations.add_member(alice, gid, carol, Role.ADMIN)
    assert (member.user_id, member.role) == (carol, Role.ADMIN)
    assert set(await s.conversations.member_ids(gid, carol)) == {alice, bob, carol}
    assert (await s.conversations.member(gid, carol)).role is Role.ADMIN
    await s.conversations.set_role(alice, gid, bob, Role.ADMIN)
    await s.conversations.remove_member(carol, gid, carol)  # anyone may leave
    assert set(await s.conversations.member_ids(gid, alice)) == {alice, bob}


async def test_membership_errors(side):
    s = side.services
    alice, bob, eve = [await signed_up(s, n) for n in ("alice", "bob", "eve")]
    group, _ = await s.conversations.create(alice, ConversationType.GROUP, [bob])
    gid = group.conversation.conversation_id
    cid = await private(s, alice, bob)
    sent = await s.messages.send(alice, cid, uuid4(), text("private"))

    hidden = f"conversation {gid} does not exist or you are not a member"
    with pytest.raises(NotFound, match=hidden):
        await s.conversations.get(eve, gid)
    with pytest.raises(NotFound, match=hidden):
        await s.messages.send(eve, gid, uuid4(), text("let me in"))
    with pytest.raises(NotFound, match=hidden):
        await s.messages.history(eve, gid, None, None, 10)
    with pytest.raises(NotFound, match=hidden):
        await s.conversations.member_ids(gid, eve)
    with pytest.raises(NotFound, match="does not exist"):
        await s.messages.get(eve, sent.message.message_id)
    with pytest.raises(Forbidden, match="only an owner or admin may add members"):
        await s.conversations.add_member(bob, gid, eve)
    with pytest.raises(Forbidden, match="a member may not remove a owner"):
        await s.conversations.remove_member(bob, gid, alice)
    with pytest.raises(InvalidInput, match="private conversation"):
        await s.conversations.add_member(alice, cid, eve)
    with pytest.raises(NotFound, match="no such user"):
        await s.conversations.create(alice, ConversationType.PRIVATE, [uuid4()])


# -- messages


async def test_send_is_idempotent_on_the_message_id(side):
    s = side.services
    alice, bob = await signed_up(s, "alice"), await signed_up(s, "bob")
    cid = await private(s, alice, bob)
    message_id = uuid4()
    first = await s.messages.send(alice, cid, message_id, text("once", n=1))
    again = await s.messages.send(alice, cid, message_id, text("once", n=1))
    assert first.created and not again.created
    assert (again.message.message_id, again.message.sequence_number) == (message_id, 1)
    assert again.message.created_at == first.message.created_at
    with pytest.raises(IdempotencyConflict, match="different"):
        await s.messages.send(alice, cid, message_id, text("twice"))
    assert len(await s.messages.history(alice, cid, None, None, 10)) == 1


async def test_send_refuses_what_it_cannot_store(side):
    s = side.services
    alice, bob = await signed_up(s, "alice"), await signed_up(s, "bob")
    cid = await private(s, alice, bob)
    with pytest.raises(InvalidInput, match="non-empty"):
        await s.messages.send(alice, cid, uuid4(), text("   "))
    with pytest.raises(InvalidInput, match="is not a file of this conversation"):
        await s.messages.send(
            alice, cid, uuid4(), Payload(PayloadType.FILE, file_reference={"file_id": str(uuid4())})
        )
    with pytest.raises(InvalidInput, match="reply_to_message_id"):
        await s.messages.send(alice, cid, uuid4(), text("re"), reply_to_message_id=uuid4())


async def test_history_pages_and_the_message_with_its_statuses(side):
    s = side.services
    alice, bob = await signed_up(s, "alice"), await signed_up(s, "bob")
    cid = await private(s, alice, bob)
    ids = []
    for i in range(1, 6):
        appended = await s.messages.send(alice, cid, uuid4(), text(f"m{i}"), ("internal",))
        assert appended.message.sequence_number == i
        ids.append(appended.message.message_id)

    newest = await s.messages.history(bob, cid, None, None, 3)
    assert [m.sequence_number for m in newest] == [3, 4, 5]
    forward = await s.messages.history(bob, cid, 1, None, 2)
    assert [m.payload.text for m in forward] == ["m2", "m3"]
    before = await s.messages.history(bob, cid, None, 3, 10)
    assert [m.sequence_number for m in before] == [1, 2]
    local = await side.platform.messages.history(bob, cid, None, None, 3)
    assert [message_view(m) for m in newest] == [message_view(m) for m in local]

    got = await s.messages.get(bob, ids[0])
    view = message_view(got)
    assert view == message_view(await side.platform.messages.get(bob, ids[0]))
    assert view["channel_delivery"][str(bob)]["internal"]["status"] in {"sent", "delivered"}
    assert view["status_history"][0]["status"] == "sent"


async def test_read_watermark(side):
    s = side.services
    alice, bob = await signed_up(s, "alice"), await signed_up(s, "bob")
    cid = await private(s, alice, bob)
    for i in range(3):
        await s.messages.send(alice, cid, uuid4(), text(f"m{i}"))
    assert await s.messages.mark_read(bob, cid, 2) == 2
    assert await s.messages.mark_read(bob, cid, 1) == 2  # never backwards
    assert (await s.conversations.member(cid, bob)).last_read_seq == 2
    with pytest.raises(InvalidInput, match="past the conversation's last message"):
        await s.messages.mark_read(bob, cid, 4)
    with pytest.raises(InvalidInput, match="must not be negative"):
        await s.messages.mark_read(bob, cid, -1)
    (view,) = [
        v for v in await s.conversations.for_user(bob) if v.conversation.conversation_id == cid
    ]
    assert view.unread_count == 1


# -- presence and events


async def test_presence(side):
    s = side.services
    alice, bob = await signed_up(s, "alice"), await signed_up(s, "bob")
    (before,) = await s.presence.states([bob])
    assert (before.online, before.last_seen) == (False, None)
    stream = await s.events.subscribe(bob)
    states = await s.presence.states([alice, bob])
    assert [(p.user_id, p.online) for p in states] == [(alice, False), (bob, True)]
    await stream.close()
    for _ in range(100):  # the server notices the end of the call a moment later
        (after,) = await s.presence.states([bob])
        if not after.online:
            break
        await asyncio.sleep(0.02)
    assert not after.online and after.last_seen is not None
    with pytest.raises(InvalidInput, match="between 1 and 100"):
        await s.presence.states([uuid4() for _ in range(101)])


async def test_contacts_hear_a_user_come_online_and_leave_on_the_event_stream(side):
    s = side.services
    alice, bob = await signed_up(s, "alice"), await signed_up(s, "bob")
    await private(s, alice, bob)
    alices = await s.events.subscribe(alice)
    try:
        bobs = await s.events.subscribe(bob)
        online = await next_of(alices, "presence")
        assert (online["data"]["user_id"], online["data"]["online"]) == (str(bob), True)
        await bobs.close()
        offline = await next_of(alices, "presence")
        assert (offline["data"]["user_id"], offline["data"]["online"]) == (str(bob), False)
        assert offline["data"]["last_seen"] is not None
    finally:
        await alices.close()


async def test_a_message_sent_reaches_the_other_users_stream_and_acks_reach_the_sender(side):
    s = side.services
    alice, bob = await signed_up(s, "alice"), await signed_up(s, "bob")
    cid = await private(s, alice, bob)
    bobs = await s.events.subscribe(bob)
    alices = await s.events.subscribe(alice)
    try:
        assert bobs.session_id != alices.session_id
        sent = await s.messages.send(alice, cid, uuid4(), text("hi bob", mood="good"))
        new = await next_of(bobs, "message.new")
        stored = await side.platform.messages.get(bob, sent.message.message_id)
        assert new["data"] == message_view(stored, full=False)  # what the WebSocket shows

        assert await s.events.ack(bob, sent.message.message_id) is True
        status = await next_of(alices, "message.status")
        assert status["data"] | {"at": None} == {
            "message_id": str(sent.message.message_id),
            "conversation_id": str(cid),
            "recipient_id": str(bob),
            "channel": "internal",
            "status": "delivered",
            "at": None,
        }
        assert await s.events.ack(alice, sent.message.message_id) is False  # her own

        await s.events.typing(alice, cid)
        typing = await next_of(bobs, "typing")
        assert typing["data"] == {
            "conversation_id": str(cid),
            "user_id": str(alice),
            "state": "started",
            "expires_in": 6,
        }
    finally:
        await bobs.close()
        await alices.close()


async def test_subscribe_resumes_after_the_last_sequence_number_seen(side):
    s = side.services
    alice, bob = await signed_up(s, "alice"), await signed_up(s, "bob")
    cid = await private(s, alice, bob)
    for i in range(1, 5):
        await s.messages.send(alice, cid, uuid4(), text(f"m{i}"))
    stream = await s.events.subscribe(bob, after={cid: 2})
    try:
        seen = [(await next_of(stream, "message.new"))["data"]["sequence_number"] for _ in range(2)]
        assert seen == [3, 4]
        await s.messages.send(alice, cid, uuid4(), text("m5"))
        assert (await next_of(stream, "message.new"))["data"]["sequence_number"] == 5
    finally:
        await stream.close()


async def test_subscribe_and_stream_errors(side):
    s = side.services
    alice, bob, eve = [await signed_up(s, n) for n in ("alice", "bob", "eve")]
    cid = await private(s, alice, bob)
    with pytest.raises(NotFound, match="not a member"):
        await s.events.subscribe(eve, after={cid: 0})
    with pytest.raises(NotFound, match="not a member"):
        await s.events.typing(eve, cid)
    with pytest.raises(NotFound, match="does not exist"):
        await s.events.ack(eve, uuid4())
    (state,) = await s.presence.states([eve])
    assert state.last_seen is None  # a refused subscription never counted as online


async def test_a_subscriber_that_falls_behind_is_cut_off(side, monkeypatch):
    from chat4all.adapters.memory import realtime

    monkeypatch.setattr(realtime, "MAX_QUEUED_FRAMES", 4)
    s = side.services
    alice, bob = await signed_up(s, "alice"), await signed_up(s, "bob")
    cid = await private(s, alice, bob)
    stream = await s.events.subscribe(alice)
    try:
        typing = frame(
            "typing", {"conversation_id": str(cid), "user_id": str(bob), "expires_in": 6}
        )
        for _ in range(10):  # faster than anyone reads: the hub drops the subscriber
            await side.platform.hub.publish([alice], typing)
        with pytest.raises(LimitExceeded, match="too far behind"):
            async with asyncio.timeout(10):
                async for _ in stream:
                    pass
    finally:
        await stream.close()
