from uuid import uuid4

from tests.integration.harness import register


async def test_private_conversation_is_created_once(http):
    alice, bob = await register(http), await register(http)
    r1 = await alice.post("/v1/conversations", {"type": "private", "members": [bob.user_id]})
    assert r1.status_code == 201
    r2 = await bob.post("/v1/conversations", {"type": "private", "members": [alice.user_id]})
    assert r2.status_code == 200
    assert r1.json()["conversation_id"] == r2.json()["conversation_id"]
    roles = {m["user_id"]: m["role"] for m in r1.json()["members"]}
    assert roles == {alice.user_id: "owner", bob.user_id: "member"}


async def test_non_member_learns_nothing(http):
    alice, bob, eve = await register(http), await register(http), await register(http)
    cid = await alice.private_with(bob)
    r = await eve.get(f"/v1/conversations/{cid}")
    unknown = await eve.get(f"/v1/conversations/{uuid4()}")
    assert r.status_code == unknown.status_code == 404
    assert (await eve.get(f"/v1/conversations/{cid}/messages")).status_code == 404
    send = await eve.post(
        f"/v1/conversations/{cid}/messages",
        {"message_id": str(uuid4()), "payload": {"type": "text", "text": "hi"}},
    )
    assert send.status_code == 404


async def test_unknown_member_and_bad_ids(http):
    alice = await register(http)
    r = await alice.post("/v1/conversations", {"type": "private", "members": [str(uuid4())]})
    assert r.status_code == 404
    bad = await alice.post("/v1/conversations", {"type": "private", "members": ["not-a-uuid"]})
    assert bad.status_code == 422
    assert "members" in bad.json()["detail"]
    assert (await alice.get("/v1/conversations/not-a-uuid")).status_code == 422


async def test_group_members_and_roles(http):
    owner, admin, member, newcomer = [await register(http) for _ in range(4)]
    r = await owner.post(
        "/v1/conversations", {"type": "group", "members": [admin.user_id, member.user_id]}
    )
    assert r.status_code == 201
    cid = r.json()["conversation_id"]
    promote = await owner.http.patch(
        f"/v1/conversations/{cid}/members/{admin.user_id}",
        json={"role": "admin"},
        headers=owner.auth,
    )
    assert promote.status_code == 204
    # a plain member may not add; an admin may
    denied = await member.post(f"/v1/conversations/{cid}/members", {"user_id": newcomer.user_id})
    assert denied.status_code == 403
    added = await admin.post(f"/v1/conversations/{cid}/members", {"user_id": newcomer.user_id})
    assert added.status_code == 201
    again = await admin.post(f"/v1/conversations/{cid}/members", {"user_id": newcomer.user_id})
    assert again.status_code == 409
    # the newcomer now sees the conversation; after removal they no longer do
    assert (await newcomer.get(f"/v1/conversations/{cid}")).status_code == 200
    assert (
        await admin.delete(f"/v1/conversations/{cid}/members/{newcomer.user_id}")
    ).status_code == 204
    assert (await newcomer.get(f"/v1/conversations/{cid}")).status_code == 404
    # an admin may not remove the owner
    assert (
        await admin.delete(f"/v1/conversations/{cid}/members/{owner.user_id}")
    ).status_code == 403


async def test_conversation_list_newest_first_with_unread(http):
    me, a, b = await register(http), await register(http), await register(http)
    with_a = await me.private_with(a)
    with_b = await me.private_with(b)
    await a.send(with_a, "one")
    await a.send(with_a, "two")
    await b.send(with_b, "three")
    r = await me.get("/v1/conversations")
    items = r.json()["items"]
    assert [c["conversation_id"] for c in items] == [with_b, with_a]
    assert items[1]["unread_count"] == 2
    assert items[1]["last_message"]["text"] == "two"
    assert (
        await me.post(f"/v1/conversations/{with_a}/read", {"up_to_sequence_number": 2})
    ).status_code == 200
    r = await me.get("/v1/conversations", params={"limit": 1})
    page = r.json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    rest = await me.get("/v1/conversations", params={"limit": 1, "cursor": page["next_cursor"]})
    assert rest.json()["items"][0]["conversation_id"] == with_a
    assert rest.json()["items"][0]["unread_count"] == 0
    assert (await me.get("/v1/conversations", params={"cursor": "!!"})).status_code == 422
