"""The stream tells the whole truth: a snapshot before, plus the events a client received,
equals the snapshot fetched afterwards (Zulip's verify_action, for Chat4All)."""

import asyncio

from tests.integration.harness import register


def statuses(message):
    return {
        (recipient, channel): d["status"]
        for recipient, channels in message["channel_delivery"].items()
        for channel, d in channels.items()
    }


async def test_history_and_statuses_follow_from_the_events(http, base_url):
    owner, *members = [await register(http) for _ in range(3)]
    r = await owner.post(
        "/v1/conversations", {"type": "group", "members": [m.user_id for m in members]}
    )
    cid = r.json()["conversation_id"]
    first = await owner.send(cid, "before")

    async with owner.stream(base_url) as watcher:
        await watcher.messages(1, ack=False)  # its own message, caught up
        history_before = (await owner.get(f"/v1/conversations/{cid}/messages")).json()["items"]
        status_before = {m["message_id"]: statuses(m) for m in history_before}

        # the actions: more messages from others, acks, a read watermark
        sent = [await members[0].send(cid, "one"), await members[1].send(cid, "two")]
        async with members[0].stream(base_url) as s0, members[1].stream(base_url) as s1:
            await s0.messages(3)
            await s1.messages(3)
            await members[0].post(f"/v1/conversations/{cid}/read", {"up_to_sequence_number": 3})
            await asyncio.sleep(0.5)  # let the pipeline settle before reading the events
            events = []
            while True:
                try:
                    events.append(await watcher.next_frame(timeout=0.5))
                except TimeoutError:
                    break

    # apply the events to the snapshot
    expected_ids = [m["message_id"] for m in history_before]
    expected_status = {k: dict(v) for k, v in status_before.items()}
    for event in events:
        data = event["data"]
        if event["type"] == "message.new" and data["message_id"] not in expected_ids:
            expected_ids.append(data["message_id"])
        elif event["type"] == "message.status":
            key = (data["recipient_id"], data["channel"])
            expected_status[data["message_id"]][key] = data["status"]

    history_after = (await owner.get(f"/v1/conversations/{cid}/messages")).json()["items"]
    assert [m["message_id"] for m in history_after] == expected_ids
    assert expected_ids[1:] == [s["message_id"] for s in sent]
    # the owner is told about its own message's statuses; others' messages are theirs to watch
    assert statuses(history_after[0]) == expected_status[first["message_id"]]
    assert set(statuses(history_after[0]).values()) == {"read", "delivered"}
