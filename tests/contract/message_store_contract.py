"""The `MessageStore` contract: every adapter's test class subclasses `MessageStoreContract` and
provides a `store` fixture giving an open store on fresh, empty storage (closed afterwards)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from chat4all.domain.errors import IdempotencyConflict
from chat4all.domain.events import Event, message_sent, set_trace_context_provider
from chat4all.domain.messages import (
    INTERNAL_CHANNEL,
    Message,
    NewMessage,
    Payload,
    PayloadType,
    StatusChange,
)
from chat4all.domain.status import DeliveryStatus
from chat4all.ports.messages import MessageStore

T0 = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)
SENT, DELIVERED, READ, FAILED = (
    DeliveryStatus.SENT,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.READ,
    DeliveryStatus.FAILED,
)


def text_message(
    conversation_id: UUID,
    sender: UUID,
    recipients: tuple[UUID, ...],
    text: str = "hello",
    message_id: UUID | None = None,
) -> NewMessage:
    return NewMessage(
        message_id=message_id or uuid4(),
        conversation_id=conversation_id,
        from_user_id=sender,
        to_user_ids=recipients,
        payload=Payload(PayloadType.TEXT, text=text),
    )


def status(message: Message, recipient: UUID, new: DeliveryStatus, at: datetime) -> StatusChange:
    return StatusChange(
        message_id=message.message_id,
        conversation_id=message.conversation_id,
        recipient_id=recipient,
        channel=INTERNAL_CHANNEL,
        status=new,
        at=at,
    )


class MessageStoreContract:
    """What every `MessageStore` adapter must do. Storage must be empty at the start of a test."""

    @pytest.fixture
    async def store(self) -> AsyncIterator[MessageStore]:
        raise NotImplementedError("an adapter's test class provides the `store` fixture")
        yield  # pragma: no cover

    async def send(
        self, store: MessageStore, conversation_id: UUID, sender: UUID, n: int, at: datetime = T0
    ) -> list[Message]:
        out = []
        for i in range(n):
            new = text_message(conversation_id, sender, (uuid4(),), f"message {i + 1}")
            out.append((await store.append(new, at + timedelta(seconds=i), None)).message)
        return out

    # --- append -----------------------------------------------------------------------------

    async def test_append_gives_gap_free_sequence_numbers(self, store: MessageStore) -> None:
        conversation, alice, bob = uuid4(), uuid4(), uuid4()
        results = [
            await store.append(text_message(conversation, alice, (bob,), f"m{i}"), T0, None)
            for i in range(3)
        ]
        assert [r.created for r in results] == [True, True, True]
        assert [r.message.sequence_number for r in results] == [1, 2, 3]
        first = results[0].message
        assert first.conversation_id == conversation
        assert first.from_user_id == alice
        assert first.to_user_ids == (bob,)
        assert first.status is SENT
        assert first.payload.text == "m0"
        assert first.recipient_status(bob) is SENT

    async def test_same_id_and_body_returns_the_stored_message(self, store: MessageStore) -> None:
        conversation, alice, bob = uuid4(), uuid4(), uuid4()
        new = text_message(conversation, alice, (bob,))
        first = await store.append(new, T0, None)
        again = await store.append(new, T0 + timedelta(minutes=1), None)
        assert again.created is False
        assert again.message == first.message
        later = await store.append(text_message(conversation, alice, (bob,)), T0, None)
        assert later.message.sequence_number == 2  # the retry took no sequence number
        sent_events = [
            e
            for e in await store.outbox_batch(100)
            if e.event.data["message_id"] == str(new.message_id)
        ]
        assert len(sent_events) == 1

    async def test_same_id_with_another_body_conflicts(self, store: MessageStore) -> None:
        conversation, alice, bob = uuid4(), uuid4(), uuid4()
        new = text_message(conversation, alice, (bob,), "original")
        first = await store.append(new, T0, None)
        other = text_message(conversation, alice, (bob,), "changed", message_id=new.message_id)
        with pytest.raises(IdempotencyConflict) as raised:
            await store.append(other, T0, None)
        assert str(new.message_id) in raised.value.detail
        assert await store.get(new.message_id) == first.message
        assert len(await store.history(conversation)) == 1
        assert len(await store.outbox_batch(100)) == 1
        nxt = await store.append(text_message(conversation, alice, (bob,)), T0, None)
        assert nxt.message.sequence_number == 2

    async def test_concurrent_appends_to_one_conversation_are_gap_free(
        self, store: MessageStore
    ) -> None:
        conversation, alice = uuid4(), uuid4()
        results = await asyncio.gather(
            *(
                store.append(text_message(conversation, alice, (uuid4(),), f"m{i}"), T0, None)
                for i in range(200)
            )
        )
        assert sorted(r.message.sequence_number for r in results) == list(range(1, 201))
        stored = await store.history(conversation, limit=1000)
        assert [m.sequence_number for m in stored] == list(range(1, 201))

    async def test_conversations_have_independent_sequences(self, store: MessageStore) -> None:
        one, two, alice = uuid4(), uuid4(), uuid4()
        results = await asyncio.gather(
            *(
                store.append(text_message(c, alice, (uuid4(),)), T0, None)
                for _ in range(5)
                for c in (one, two)
            )
        )
        for conversation in (one, two):
            seqs = sorted(
                r.message.sequence_number
                for r in results
                if r.message.conversation_id == conversation
            )
            assert seqs == [1, 2, 3, 4, 5]

    async def test_stored_message_round_trips(self, store: MessageStore) -> None:
        conversation, alice, bob, carol = uuid4(), uuid4(), uuid4(), uuid4()
        earlier = await store.append(text_message(conversation, alice, (bob, carol)), T0, None)
        new = NewMessage(
            message_id=uuid4(),
            conversation_id=conversation,
            from_user_id=alice,
            to_user_ids=(bob, carol),
            payload=Payload(
                PayloadType.FILE,
                text="the report",
                file_reference={"file_id": str(uuid4()), "filename": "r.pdf", "size_bytes": 12},
                metadata={"k": [1, 2, {"x": None}]},
            ),
            target_channels=("whatsapp", "internal"),
            reply_to_message_id=earlier.message.message_id,
            metadata={"client": "tests", "n": 3},
        )
        now = datetime(2025, 1, 15, 10, 0, 0, 123456, tzinfo=UTC)
        appended = await store.append(new, now, timedelta(days=90))
        got = await store.get(new.message_id)
        assert got == appended.message
        assert got.created_at == now and got.created_at.tzinfo is not None
        assert got.updated_at.tzinfo is not None
        # A store may keep the expiry at its own precision (a BSON date holds milliseconds),
        # never earlier; what `append` returned is what `get` reads (checked above).
        expiry = now + timedelta(days=90)
        assert got.ttl_expire_at is not None and got.ttl_expire_at.tzinfo is not None
        assert expiry <= got.ttl_expire_at < expiry + timedelta(milliseconds=1)
        assert got.fingerprint == new.fingerprint()
        assert set(got.channel_delivery[str(bob)]) == {"whatsapp", "internal"}
        assert await store.get(uuid4()) is None

    # --- history ----------------------------------------------------------------------------

    async def test_history_pages(self, store: MessageStore) -> None:
        conversation, alice = uuid4(), uuid4()
        await self.send(store, conversation, alice, 10)

        async def seqs(
            after_seq: int | None = None,
            before_seq: int | None = None,
            limit: int = 50,
            newest_first: bool = False,
        ) -> list[int]:
            page = await store.history(
                conversation,
                after_seq=after_seq,
                before_seq=before_seq,
                limit=limit,
                newest_first=newest_first,
            )
            return [m.sequence_number for m in page]

        assert await seqs() == list(range(1, 11))
        assert await seqs(limit=3) == [1, 2, 3]
        assert await seqs(after_seq=3, limit=4) == [4, 5, 6, 7]
        assert await seqs(before_seq=5) == [1, 2, 3, 4]
        assert await seqs(after_seq=2, before_seq=6) == [3, 4, 5]
        assert await seqs(newest_first=True, limit=3) == [10, 9, 8]
        assert await seqs(newest_first=True, before_seq=8, limit=2) == [7, 6]
        assert await seqs(after_seq=10) == []
        assert await store.history(uuid4()) == []

    # --- statuses ---------------------------------------------------------------------------

    async def test_status_moves_forward_only(self, store: MessageStore) -> None:
        conversation, alice, bob = uuid4(), uuid4(), uuid4()
        message = (await store.append(text_message(conversation, alice, (bob,)), T0, None)).message
        t = T0 + timedelta(seconds=1)

        delivered = status(message, bob, DELIVERED, t)
        moved = await store.apply_status([delivered])
        assert len(moved) == 1 and moved[0][1] == delivered
        assert moved[0][0].recipient_status(bob) is DELIVERED
        assert moved[0][0].status is DELIVERED
        assert await store.apply_status([delivered]) == []  # the same change twice

        read = status(message, bob, READ, t + timedelta(seconds=1))
        [(after_read, _)] = await store.apply_status([read])
        assert after_read.status is READ
        late = status(message, bob, DELIVERED, t + timedelta(seconds=2))
        assert await store.apply_status([late]) == []  # a late `delivered` never overwrites read
        stored = await store.get(message.message_id)
        assert stored == after_read
        assert stored is not None and stored.recipient_status(bob) is READ
        assert [h["status"] for h in stored.status_history] == ["sent", "delivered", "read"]

    async def test_failed_only_from_sent(self, store: MessageStore) -> None:
        conversation, alice, bob, carol = uuid4(), uuid4(), uuid4(), uuid4()
        message = (
            await store.append(text_message(conversation, alice, (bob, carol)), T0, None)
        ).message
        t = T0 + timedelta(seconds=1)
        await store.apply_status([status(message, bob, DELIVERED, t)])
        assert await store.apply_status([status(message, bob, FAILED, t)]) == []
        [(after, _)] = await store.apply_status([status(message, carol, FAILED, t)])
        assert after.recipient_status(carol) is FAILED
        assert after.recipient_status(bob) is DELIVERED
        assert after.status is DELIVERED  # failed recipients do not hold the others back

    async def test_the_sender_and_strangers_are_not_recipients(self, store: MessageStore) -> None:
        conversation, alice, bob = uuid4(), uuid4(), uuid4()
        message = (await store.append(text_message(conversation, alice, (bob,)), T0, None)).message
        t = T0 + timedelta(seconds=1)
        assert await store.apply_status([status(message, alice, READ, t)]) == []
        assert await store.apply_status([status(message, uuid4(), READ, t)]) == []
        ghost = StatusChange(uuid4(), conversation, bob, INTERNAL_CHANNEL, READ, t)
        assert await store.apply_status([ghost]) == []
        assert await store.get(message.message_id) == message

    async def test_several_changes_in_one_call(self, store: MessageStore) -> None:
        conversation, alice, bob, carol = uuid4(), uuid4(), uuid4(), uuid4()
        one = (
            await store.append(text_message(conversation, alice, (bob, carol)), T0, None)
        ).message
        two = (await store.append(text_message(conversation, alice, (bob,)), T0, None)).message
        t = T0 + timedelta(seconds=1)
        changes = [
            status(one, bob, DELIVERED, t),
            status(one, bob, READ, t),
            status(one, bob, DELIVERED, t),  # stale within the same call
            status(two, bob, DELIVERED, t),
        ]
        moved = await store.apply_status(changes)
        assert [c for _, c in moved] == [changes[0], changes[1], changes[3]]
        stored_one = await store.get(one.message_id)
        assert stored_one is not None and stored_one.recipient_status(bob) is READ
        assert stored_one.recipient_status(carol) is SENT
        assert stored_one.status is SENT  # carol has not received it yet

    async def test_read_watermark_touches_only_the_readers_receipts(
        self, store: MessageStore
    ) -> None:
        conversation, alice, bob, carol = uuid4(), uuid4(), uuid4(), uuid4()
        sent = []
        for sender, to in [(alice, (bob, carol))] * 3 + [
            (bob, (alice, carol)),
            (carol, (alice, bob)),
        ]:
            sent.append(
                (await store.append(text_message(conversation, sender, to), T0, None)).message
            )
        at = T0 + timedelta(minutes=1)
        moved = await store.apply_read(conversation, carol, 1, 5, at, INTERNAL_CHANNEL)
        assert sorted(m.sequence_number for m, _ in moved) == [2, 3, 4]  # not 1, not her own 5
        for message, change in moved:
            assert change.recipient_id == carol and change.status is READ and change.at == at
            assert message.recipient_status(carol) is READ
        for message in sent:
            stored = await store.get(message.message_id)
            assert stored is not None
            for user in (alice, bob):
                if str(user) in stored.channel_delivery:
                    assert stored.recipient_status(user) is SENT
        assert await store.apply_read(conversation, carol, 0, 5, at, INTERNAL_CHANNEL) != []
        assert await store.apply_read(conversation, carol, 0, 5, at, INTERNAL_CHANNEL) == []

    # --- summaries and counts -----------------------------------------------------------------

    async def test_summaries(self, store: MessageStore) -> None:
        busy, quiet, empty, alice, bob = uuid4(), uuid4(), uuid4(), uuid4(), uuid4()
        await self.send(store, busy, alice, 3)
        long_text = "x" * 500
        last_at = T0 + timedelta(days=1, hours=2)
        last = (
            await store.append(text_message(busy, bob, (alice,), long_text), last_at, None)
        ).message
        await self.send(store, quiet, alice, 1)
        found = await store.summaries([busy, quiet, empty])
        assert set(found) == {busy, quiet}
        summary = found[busy]
        assert summary.conversation_id == busy
        assert summary.last_sequence_number == 4
        assert summary.last_message_at == last_at
        assert summary.last_message_at is not None and summary.last_message_at.tzinfo is not None
        assert summary.last_message is not None
        assert summary.last_message["message_id"] == str(last.message_id)
        assert summary.last_message["from_user_id"] == str(bob)
        assert summary.last_message["sequence_number"] == 4
        preview = summary.last_message["text"]
        assert long_text.startswith(preview.rstrip("…")) and 50 <= len(preview) <= 101
        assert found[quiet].last_sequence_number == 1
        assert await store.summaries([]) == {}

    async def test_count_after(self, store: MessageStore) -> None:
        conversation, alice, bob = uuid4(), uuid4(), uuid4()
        for sender in (alice, bob, alice, alice, bob):
            await store.append(text_message(conversation, sender, (uuid4(),)), T0, None)
        assert await store.count_after(conversation, 0, not_from=bob) == 3
        assert await store.count_after(conversation, 2, not_from=bob) == 2
        assert await store.count_after(conversation, 0, not_from=alice) == 2
        assert await store.count_after(conversation, 5, not_from=alice) == 0
        assert await store.count_after(uuid4(), 0, not_from=alice) == 0

    # --- outbox -------------------------------------------------------------------------------

    async def test_the_sends_trace_context_reaches_the_outbox(self, store: MessageStore) -> None:
        traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        set_trace_context_provider(lambda: traceparent)
        try:
            [message] = await self.send(store, uuid4(), uuid4(), 1)
        finally:
            set_trace_context_provider(None)
        [untraced] = await self.send(store, uuid4(), uuid4(), 1)
        events = {e.event.id: e.event for e in await store.outbox_batch(100)}
        assert events[f"sent:{message.message_id}"].traceparent == traceparent
        assert events[f"sent:{untraced.message_id}"].traceparent is None

    async def test_outbox_keeps_order_and_forgets_what_is_done(self, store: MessageStore) -> None:
        conversation, alice = uuid4(), uuid4()
        messages = await self.send(store, conversation, alice, 3)
        extra = [
            Event(
                type="test.custom",
                key=str(conversation),
                data={"n": i, "nested": {"a": [i]}},
                time=T0,
            )
            for i in range(2)
        ]
        await store.enqueue(extra)
        entries = await store.outbox_batch(100)
        assert [e.event for e in entries] == [message_sent(m, None) for m in messages] + extra
        ids = [e.entry_id for e in entries]
        assert ids == sorted(ids) and len(set(ids)) == 5
        assert [e.entry_id for e in await store.outbox_batch(2)] == ids[:2]
        await store.outbox_done(ids[:3])
        assert [e.entry_id for e in await store.outbox_batch(100)] == ids[3:]
        await store.outbox_done(ids[3:])
        assert await store.outbox_batch(100) == []

    async def test_wait_for_outbox(self, store: MessageStore) -> None:
        await store.wait_for_outbox(0.05)  # whatever happened before this test
        started = time.monotonic()
        await store.wait_for_outbox(0.2)
        assert time.monotonic() - started >= 0.15  # nothing enqueued: waits the timeout

        waiting = asyncio.create_task(store.wait_for_outbox(5))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await store.append(text_message(uuid4(), uuid4(), (uuid4(),)), T0, None)
        await asyncio.wait_for(waiting, 2)
        assert time.monotonic() - started < 1.0

        await store.enqueue([Event(type="test.custom", key="k", data={}, time=T0)])
        started = time.monotonic()
        await store.wait_for_outbox(5)  # enqueued since the last call: returns at once
        assert time.monotonic() - started < 1.0

    async def test_ping(self, store: MessageStore) -> None:
        await store.ping()
