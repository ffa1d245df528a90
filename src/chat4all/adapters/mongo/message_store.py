"""The message store on MongoDB (PyMongo's async client), written for MongoDB and tested on
FerretDB v1, which has no multi-document transactions. So every method is atomic through
single-document writes, and every multi-step method can stop anywhere and be retried.

Collections (`schema` has the indexes, `documents` the document shapes):

- `messages`: one seed document per message. It also carries its own `message.sent` outbox
  entry (`outbox_pending` + `outbox_key`), so storing a message and queueing its event is ONE
  insert: there is no state in which one exists without the other.
- `conversation_history`: one summary per conversation (`_id` = conversation_id): the highest
  sequence number, the last message's preview and time, a message count.
- `outbox`: the events `enqueue` is given (status changes, read watermarks), as their JSON.
- `file_metadata`: created with its indexes; the files work fills it.

Sequence numbers are taken by inserting with `last + 1` under the unique index
(conversation_id, sequence_number): the insert is the commit point, and a duplicate key means
another writer took that number first, so the writer looks again and takes the next one. A
number is only ever used when the one before it exists, so numbers are gap-free whatever
crashes, and two processes appending to one conversation both succeed, one after the other.
(A counter incremented before the insert would leave a gap for every writer that stops between
the two writes, and would let number 6 be stored, and relayed, before 5.)

Within one store instance, appends to one conversation take turns (an asyncio lock per
conversation), and the instance remembers each conversation's last number, so the usual append
is one insert with no read before it. A stale memory, after another process wrote, costs one
duplicate key and one read. With no memory, the writer starts from the summary's number.

The summary is written after the insert, with `$max`, so it only moves forward and writers may
apply it in any order or twice. A writer that stops between the two writes leaves the summary
one message behind; the next append to the conversation, a retry of the same message_id, and
the outbox relay (which checks the summary of every message it is about to publish) each bring
it up to date. The summary also keeps the highest number after the messages expire, so numbers
are not reused: the writer starts from max(summary, newest message) + 1.

`outbox_batch` returns the oldest pending entries of both collections, merged by key
(`outbox_keys`). A message's key is greater than its conversation's previous message's, so each
conversation comes out in sequence order. `wait_for_outbox` wakes at once for this instance's
own writes and polls for other processes' (MongoDB's change streams would avoid polling, but
they need a replica set, and FerretDB v1 has none).

Status changes are read-modify-write on one document with compare-and-set on `revision`: a
concurrent writer makes the update match nothing, and the change is applied again to the newer
document. Each message's update is atomic; a batch of changes is not (the port's callers apply
the same changes again after a failure, and a change applied twice moves nothing).

On FerretDB v1 an update is not atomic (a read, then a write by _id, with no lock), so racing
updates of one document can lose one: status writes to one message, or the summary's `$max`
from two processes. What numbering, deduplication and the outbox entries rest on are inserts
under unique indexes, which FerretDB does enforce. docs/cluster.md lists what FerretDB lacks.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from uuid import UUID

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.errors import BulkWriteError, DuplicateKeyError

from chat4all.adapters.mongo import schema
from chat4all.adapters.mongo.documents import decode_message, encode_document, stored_message
from chat4all.adapters.mongo.errors import translated
from chat4all.adapters.mongo.message_txns import (
    MAX_ATTEMPTS,
    Collections,
    Document,
    apply_changes_txn,
    check_summaries_txn,
    clash_txn,
    event_json,
    newest_position_txn,
    outbox_event,
    raise_summary_txn,
    replay_txn,
    summary_position_txn,
)
from chat4all.adapters.mongo.outbox_keys import EVENT, MESSAGE, OutboxKeys, kind_of
from chat4all.domain.errors import Unavailable
from chat4all.domain.events import Event, current_trace_context
from chat4all.domain.messages import ConversationSummary, Message, NewMessage, StatusChange
from chat4all.domain.status import DeliveryStatus
from chat4all.ports.messages import Appended, OutboxEntry

DEFAULT_SERVER_SELECTION_TIMEOUT: Final = 2.0  # seconds before a down server is `Unavailable`
DEFAULT_OPERATION_TIMEOUT: Final = 10.0  # seconds a call waits for the server's answer
DEFAULT_OUTBOX_POLL_INTERVAL: Final = 0.05
DEFAULT_MAX_POOL_SIZE: Final = 50
REMEMBERED_CONVERSATIONS: Final = 100_000


@dataclass
class _Turns:
    lock: asyncio.Lock
    waiting: int = 0


class MongoMessageStore:
    """`MessageStore` on one MongoDB database. Build it with `connect`."""

    def __init__(
        self,
        client: AsyncMongoClient[Document],
        database: str,
        *,
        server_expires_messages: bool,
        outbox_poll_interval: float = DEFAULT_OUTBOX_POLL_INTERVAL,
        keys: OutboxKeys | None = None,
    ) -> None:
        self._client = client
        self._c = Collections.of(client[database])
        self._keys = keys or OutboxKeys()
        self._poll_interval = outbox_poll_interval
        self.server_expires_messages = server_expires_messages
        self._turns: dict[str, _Turns] = {}
        # conversation -> (last sequence number, its outbox key), as this instance last saw it
        self._positions: OrderedDict[str, tuple[int, int]] = OrderedDict()
        # Set on open so the relay looks at what a previous run left in the outbox.
        self._outbox_signal = asyncio.Event()
        self._outbox_signal.set()

    @classmethod
    async def connect(
        cls,
        url: str,
        database: str = "chat4all",
        *,
        server_selection_timeout: float = DEFAULT_SERVER_SELECTION_TIMEOUT,
        operation_timeout: float | None = DEFAULT_OPERATION_TIMEOUT,
        outbox_poll_interval: float = DEFAULT_OUTBOX_POLL_INTERVAL,
        max_pool_size: int = DEFAULT_MAX_POOL_SIZE,
    ) -> MongoMessageStore:
        """Connect to `url` and create the collections and indexes that are missing.
        `server_selection_timeout`: how long a call waits for a reachable server before it
        raises `Unavailable`; `operation_timeout`: how long a call waits for the server's answer
        (None: no limit); `outbox_poll_interval`: how often `wait_for_outbox` looks for other
        processes' entries; `max_pool_size`: connections to the server, so calls in flight at
        once (on FerretDB v1 the sum over all its clients must stay below its PostgreSQL pool,
        or it deadlocks: docs/cluster.md)."""
        timeout_ms = int(server_selection_timeout * 1000)
        client: AsyncMongoClient[Document] = AsyncMongoClient(
            url,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            # Not timeoutMS: with it, PyMongo waits that long to select a server, however
            # short serverSelectionTimeoutMS is, and a down server would take that long to see.
            socketTimeoutMS=int(operation_timeout * 1000) if operation_timeout else None,
            maxPoolSize=max_pool_size,
            tz_aware=True,
            appname="chat4all",
        )
        try:
            with translated("connecting to the message store"):
                await client.admin.command("ping")
                server_ttl = await schema.create_indexes(client[database])
        except BaseException:
            await client.close()
            raise
        return cls(
            client,
            database,
            server_expires_messages=server_ttl,
            outbox_poll_interval=outbox_poll_interval,
        )

    async def close(self) -> None:
        await self._client.close()

    async def ping(self) -> None:
        with translated("ping"):
            await self._client.admin.command("ping")

    # --- append --------------------------------------------------------------------------

    async def append(self, new: NewMessage, now: datetime, ttl: timedelta | None) -> Appended:
        conversation = str(new.conversation_id)
        with translated(f"storing message {new.message_id}"):
            async with self._turn(conversation):
                appended = await self._append(new, now, ttl, conversation)
        if appended.created:
            self._outbox_signal.set()
        return appended

    async def _append(
        self, new: NewMessage, now: datetime, ttl: timedelta | None, conversation: str
    ) -> Appended:
        position = self._positions.get(conversation)
        seq, after = position or await summary_position_txn(self._c, conversation)
        seq += 1
        traceparent = current_trace_context()
        for _ in range(MAX_ATTEMPTS):
            key = self._keys.next(MESSAGE, after)
            message = stored_message(new, seq, now, ttl)
            document = message.to_document()
            doc = encode_document(document)
            doc.update(revision=0, outbox_pending=True, outbox_key=key)
            if traceparent is not None:  # the send's trace, for the relay's `message.sent`
                doc["outbox_traceparent"] = traceparent
            try:
                await self._c.messages.insert_one(doc)
            except DuplicateKeyError as e:
                clash = await clash_txn(self._c, e, new.message_id, conversation, seq)
                if clash == "message_id":
                    replayed = await replay_txn(self._c, new)
                    if replayed is not None:
                        return replayed
                elif clash == "sequence_number":  # another writer took it: look again
                    seq, after = await newest_position_txn(self._c, conversation)
                    seq += 1
                continue  # or another writer made the same outbox key: take the next one
            self._remember(conversation, seq, key)
            await raise_summary_txn(self._c, document, key, count=1)
            return Appended(message, created=True)
        raise Unavailable(
            f"message {new.message_id}: other writers took {MAX_ATTEMPTS} sequence numbers of "
            f"conversation {conversation} first"
        )

    @asynccontextmanager
    async def _turn(self, conversation: str) -> AsyncIterator[None]:
        """This instance's appends to one conversation, one at a time."""
        turns = self._turns.get(conversation)
        if turns is None:
            turns = self._turns[conversation] = _Turns(asyncio.Lock())
        turns.waiting += 1
        try:
            async with turns.lock:
                yield
        finally:
            turns.waiting -= 1
            if not turns.waiting:
                del self._turns[conversation]

    def _remember(self, conversation: str, seq: int, key: int) -> None:
        self._positions[conversation] = (seq, key)
        self._positions.move_to_end(conversation)
        if len(self._positions) > REMEMBERED_CONVERSATIONS:
            self._positions.popitem(last=False)

    # --- reads ---------------------------------------------------------------------------

    async def get(self, message_id: UUID) -> Message | None:
        with translated(f"reading message {message_id}"):
            doc = await self._c.messages.find_one({"message_id": str(message_id)})
        return decode_message(doc) if doc is not None else None

    async def history(
        self,
        conversation_id: UUID,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int = 50,
        newest_first: bool = False,
    ) -> list[Message]:
        if limit <= 0:
            return []
        query: Document = {"conversation_id": str(conversation_id)}
        bounds = {
            op: bound
            for op, bound in (("$gt", after_seq), ("$lt", before_seq))
            if bound is not None
        }
        if bounds:
            query["sequence_number"] = bounds
        order = DESCENDING if newest_first else ASCENDING
        with translated(f"reading conversation {conversation_id}"):
            cursor = self._c.messages.find(query, sort=[("sequence_number", order)], limit=limit)
            return [decode_message(doc) async for doc in cursor]

    async def summaries(self, conversation_ids: Sequence[UUID]) -> dict[UUID, ConversationSummary]:
        if not conversation_ids:
            return {}
        ids = list(dict.fromkeys(str(c) for c in conversation_ids))
        with translated("reading conversation summaries"):
            heads = await self._c.history.find({"_id": {"$in": ids}}).to_list()
        return {
            UUID(head["_id"]): ConversationSummary(
                conversation_id=UUID(head["_id"]),
                last_sequence_number=int(head["last_sequence_number"]),
                last_message_at=datetime.fromisoformat(head["last_message_at"]),
                last_message=dict(head["last_message"]),
            )
            for head in heads
        }

    async def count_after(self, conversation_id: UUID, after_seq: int, not_from: UUID) -> int:
        query = {
            "conversation_id": str(conversation_id),
            "sequence_number": {"$gt": after_seq},
            "from_user_id": {"$ne": str(not_from)},
        }
        with translated(f"counting messages of conversation {conversation_id}"):
            return await self._c.messages.count_documents(query)

    # --- statuses ------------------------------------------------------------------------

    async def apply_status(
        self, changes: Sequence[StatusChange]
    ) -> list[tuple[Message, StatusChange]]:
        if not changes:
            return []
        per_message: dict[UUID, list[int]] = {}
        for i, change in enumerate(changes):
            per_message.setdefault(change.message_id, []).append(i)
        outcomes = await asyncio.gather(
            *(
                self._apply(message_id, [changes[i] for i in positions])
                for message_id, positions in per_message.items()
            )
        )
        moved: dict[int, tuple[Message, StatusChange]] = {}
        for positions, outcome in zip(per_message.values(), outcomes, strict=True):
            moved.update((i, m) for i, m in zip(positions, outcome, strict=True) if m is not None)
        return [moved[i] for i in sorted(moved)]

    async def apply_read(
        self,
        conversation_id: UUID,
        reader_id: UUID,
        after_seq: int,
        up_to_seq: int,
        at: datetime,
        channel: str,
    ) -> list[tuple[Message, StatusChange]]:
        if up_to_seq <= after_seq:
            return []
        reader = str(reader_id)
        query = {
            "conversation_id": str(conversation_id),
            "sequence_number": {"$gt": after_seq, "$lte": up_to_seq},
            "from_user_id": {"$ne": reader},
            f"channel_delivery.{reader}": {"$exists": True},  # the messages the reader received
        }
        with translated(f"reading conversation {conversation_id}"):
            cursor = self._c.messages.find(query, sort=[("sequence_number", ASCENDING)])
            docs = await cursor.to_list()
        outcomes = await asyncio.gather(
            *(
                self._apply(
                    UUID(doc["message_id"]),
                    [
                        StatusChange(
                            message_id=UUID(doc["message_id"]),
                            conversation_id=conversation_id,
                            recipient_id=reader_id,
                            channel=channel,
                            status=DeliveryStatus.READ,
                            at=at,
                        )
                    ],
                    doc,
                )
                for doc in docs
            )
        )
        return [m for [m] in outcomes if m is not None]

    async def _apply(
        self, message_id: UUID, changes: list[StatusChange], doc: Document | None = None
    ) -> list[tuple[Message, StatusChange] | None]:
        with translated(f"updating the status of message {message_id}"):
            return await apply_changes_txn(self._c, message_id, changes, doc)

    # --- outbox --------------------------------------------------------------------------

    async def enqueue(self, events: Sequence[Event]) -> None:
        if not events:
            return
        encoded = [event_json(e) for e in events]
        with translated("enqueueing events"):
            while encoded:
                docs = [{"_id": self._keys.next(EVENT), "event": e} for e in encoded]
                try:
                    await self._c.outbox.insert_many(docs, ordered=True)
                    encoded = []
                except BulkWriteError as e:
                    errors = e.details.get("writeErrors", [])
                    if any(err.get("code") != 11000 for err in errors):
                        raise
                    # another writer made one of these keys: the rest again, with new keys
                    encoded = encoded[int(e.details["nInserted"]) :]
        self._outbox_signal.set()

    async def outbox_batch(self, limit: int) -> list[OutboxEntry]:
        if limit <= 0:
            return []
        with translated("reading the outbox"):
            pending = await self._c.messages.find(
                {"outbox_pending": True}, sort=[("outbox_key", ASCENDING)], limit=limit
            ).to_list()
            queued = await self._c.outbox.find({}, sort=[("_id", ASCENDING)], limit=limit).to_list()
            entries = sorted(
                [(int(d["outbox_key"]), d) for d in pending] + [(int(d["_id"]), d) for d in queued],
                key=lambda entry: entry[0],
            )[:limit]
            await check_summaries_txn(self._c, [d for key, d in entries if kind_of(key) == MESSAGE])
        return [OutboxEntry(key, outbox_event(key, doc)) for key, doc in entries]

    async def outbox_done(self, entry_ids: Sequence[int]) -> None:
        messages = [i for i in entry_ids if kind_of(i) == MESSAGE]
        events = [i for i in entry_ids if kind_of(i) == EVENT]
        with translated("clearing the outbox"):
            if messages:
                await self._c.messages.update_many(
                    {"outbox_pending": True, "outbox_key": {"$in": messages}},
                    {"$unset": {"outbox_pending": "", "outbox_key": "", "outbox_traceparent": ""}},
                )
            if events:
                await self._c.outbox.delete_many({"_id": {"$in": events}})

    async def wait_for_outbox(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._outbox_signal.is_set():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            try:
                async with asyncio.timeout(min(self._poll_interval, remaining)):
                    await self._outbox_signal.wait()
            except TimeoutError:
                if await self._anything_pending():  # another process's entries
                    return
        self._outbox_signal.clear()

    async def _anything_pending(self) -> bool:
        with translated("polling the outbox"):
            return (
                await self._c.messages.find_one({"outbox_pending": True}, {"_id": 1}) is not None
                or await self._c.outbox.find_one({}, {"_id": 1}) is not None
            )

    # --- expiry --------------------------------------------------------------------------

    async def delete_expired(self, now: datetime) -> int:
        """What the seed's TTL index does, for servers without one (FerretDB): delete messages
        whose `ttl_expire_at` has passed; how many. Messages whose `message.sent` is still in
        the outbox wait until it is relayed. Sequence numbers are not reused."""
        with translated("deleting expired messages"):
            deleted = await self._c.messages.delete_many(
                {"ttl_expire_at": {"$lte": now}, "outbox_pending": {"$ne": True}}
            )
        return deleted.deleted_count
