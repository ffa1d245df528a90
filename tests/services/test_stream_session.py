"""The stream session's ordering rules, driven directly on a real embedded platform: live frames
that arrive ahead of a gap get the gap filled from the store first; duplicates are dropped."""

from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import orjson
import pytest

from chat4all.bootstrap import Platform, build_embedded
from chat4all.domain.conversations import ConversationType
from chat4all.domain.messages import Payload, PayloadType
from chat4all.services.frames import message_new, message_view
from tests.integration.harness import settings_for_tests


@pytest.fixture
async def platform(tmp_path) -> AsyncIterator[Platform]:
    platform = await build_embedded(settings_for_tests(tmp_path))  # workers not started
    yield platform
    await platform.stop()


async def test_gap_is_filled_from_the_store_and_duplicates_are_dropped(platform):
    alice = await platform.auth.register("alice", "alice@example.com", "long password")
    bob = await platform.auth.register("bob", "bob@example.com", "long password")
    view, _ = await platform.conversations.create(
        alice.user_id, ConversationType.PRIVATE, [bob.user_id]
    )
    cid = view.conversation.conversation_id
    stored = []
    for i in range(1, 5):
        appended = await platform.messages.send(
            alice.user_id, cid, uuid4(), Payload(PayloadType.TEXT, f"m{i}")
        )
        stored.append(appended.message)

    sent: list[dict[str, Any]] = []

    async def collect(raw: bytes) -> None:
        sent.append(orjson.loads(raw))

    session = platform.stream_session(bob.user_id, collect)
    subscription = await session.open()  # catch-up sends 1..4
    assert [f["data"]["sequence_number"] for f in sent if f["type"] == "message.new"] == [
        1,
        2,
        3,
        4,
    ]

    sent.clear()
    await session.on_client_frame(
        orjson.dumps({"type": "resume", "data": {"after": {str(cid): 1}}})
    )
    assert [f["data"]["sequence_number"] for f in sent if f["type"] == "message.new"] == [2, 3, 4]

    # Two more messages are stored, but only the last one arrives live: 5 must come first.
    for i in (5, 6):
        appended = await platform.messages.send(
            alice.user_id, cid, uuid4(), Payload(PayloadType.TEXT, f"m{i}")
        )
        stored.append(appended.message)
    sent.clear()
    await session.on_published(message_new(message_view(stored[5], full=False)))
    await session.on_published(message_new(message_view(stored[3], full=False)))  # a duplicate
    await session.on_published(message_new(message_view(stored[5], full=False)))  # again
    assert [f["data"]["sequence_number"] for f in sent] == [5, 6]

    await subscription.close()
    await session.close()
