"""The embedded message store: the seed's MongoDB documents in one SQLite file, plus the outbox.

Tables (schema version 1, in `PRAGMA user_version`):

- `messages`: the whole document as JSON (`Message.to_document()`), plus copies of the fields the
  seed indexes: message_id (unique), (conversation_id, sequence_number) (unique),
  (conversation_id, created_at), (from_user_id, created_at), status, ttl_expire_at, fingerprint.
  Times in index columns are integer microseconds since the epoch so they sort correctly.
- `conversation_history`: the seed's per-day bucket (conversation_id, date, message_count,
  last_message_at, last_message). The seed's `message_ids` array is left out on purpose: keeping
  it means rewriting an ever-growing array on every send, and the (conversation_id, created_at)
  index of `messages` already answers "which messages that day".
- `conversation_sequences`: each conversation's last sequence number, for gap-free numbering.
- `outbox`: events waiting for the relay, as `Event.to_dict()` JSON, in insertion order.

One file belongs to this store alone (the schema version is the file's `user_version`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from uuid import UUID

from chat4all.adapters.sqlite.message_txns import (
    MAX_SEQ,
    append_txn,
    apply_read_txn,
    apply_status_txn,
    count_after_txn,
    create_schema_txn,
    delete_expired_txn,
    enqueue_txn,
    history_txn,
    load_txn,
    outbox_batch_txn,
    outbox_done_txn,
    ping_txn,
    summaries_txn,
)
from chat4all.adapters.sqlite.writer import DEFAULT_BUSY_TIMEOUT, SQLiteReader, SQLiteWriter
from chat4all.domain.events import Event, current_trace_context
from chat4all.domain.messages import ConversationSummary, Message, NewMessage, StatusChange
from chat4all.ports.messages import Appended, OutboxEntry


class SQLiteMessageStore:
    """`MessageStore` on one SQLite file: writes group-committed by its `SQLiteWriter`, reads on
    its own connection. Each method runs one named `..._txn` function of `message_txns`
    atomically."""

    def __init__(self, writer: SQLiteWriter, reader: SQLiteReader) -> None:
        self._writer = writer
        self._reader = reader
        # Set on open so the relay looks at what a previous run left in the outbox.
        self._outbox_signal = asyncio.Event()
        self._outbox_signal.set()

    @classmethod
    async def open(
        cls, path: str | Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT
    ) -> SQLiteMessageStore:
        """Open (creating if missing) the store in the file `path`. `busy_timeout`: how long a
        statement waits for another process's lock before the store reports `Unavailable`."""
        writer = await SQLiteWriter.open(path, busy_timeout=busy_timeout)
        try:
            await writer.run(create_schema_txn)
        except BaseException:
            await writer.close()
            raise
        return cls(writer, SQLiteReader(path, busy_timeout=busy_timeout))

    async def close(self) -> None:
        await self._writer.close()
        await self._reader.close()

    async def ping(self) -> None:
        await self._reader.run(ping_txn)

    async def append(self, new: NewMessage, now: datetime, ttl: timedelta | None) -> Appended:
        return await self._writer.run(
            # The trace is the caller's: the group commit runs jobs outside their context.
            partial(append_txn, new=new, now=now, ttl=ttl, traceparent=current_trace_context()),
            after_commit=self._outbox_signal.set,
        )

    async def get(self, message_id: UUID) -> Message | None:
        return await self._reader.run(partial(load_txn, message_id=message_id))

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
        return await self._reader.run(
            partial(
                history_txn,
                conversation_id=conversation_id,
                after_seq=after_seq if after_seq is not None else -1,
                before_seq=before_seq if before_seq is not None else MAX_SEQ,
                limit=limit,
                newest_first=newest_first,
            )
        )

    async def apply_status(
        self, changes: Sequence[StatusChange]
    ) -> list[tuple[Message, StatusChange]]:
        if not changes:
            return []
        return await self._writer.run(partial(apply_status_txn, changes=list(changes)))

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
        return await self._writer.run(
            partial(
                apply_read_txn,
                conversation_id=conversation_id,
                reader_id=reader_id,
                after_seq=after_seq,
                up_to_seq=up_to_seq,
                at=at,
                channel=channel,
            )
        )

    async def summaries(self, conversation_ids: Sequence[UUID]) -> dict[UUID, ConversationSummary]:
        if not conversation_ids:
            return {}
        ids = list(conversation_ids)
        return await self._reader.run(partial(summaries_txn, conversation_ids=ids))

    async def count_after(self, conversation_id: UUID, after_seq: int, not_from: UUID) -> int:
        return await self._reader.run(
            partial(
                count_after_txn,
                conversation_id=conversation_id,
                after_seq=after_seq,
                not_from=not_from,
            )
        )

    async def enqueue(self, events: Sequence[Event]) -> None:
        if not events:
            return
        await self._writer.run(
            partial(enqueue_txn, events=list(events)), after_commit=self._outbox_signal.set
        )

    async def outbox_batch(self, limit: int) -> list[OutboxEntry]:
        if limit <= 0:
            return []
        return await self._reader.run(partial(outbox_batch_txn, limit=limit))

    async def outbox_done(self, entry_ids: Sequence[int]) -> None:
        if entry_ids:
            await self._writer.run(partial(outbox_done_txn, entry_ids=list(entry_ids)))

    async def delete_expired(self, now: datetime) -> int:
        """The seed's TTL index: delete messages whose `ttl_expire_at` has passed; how many.
        Sequence numbers are not reused and day buckets keep their counts."""
        return await self._writer.run(partial(delete_expired_txn, now=now))

    async def wait_for_outbox(self, timeout: float) -> None:
        if not self._outbox_signal.is_set():
            try:
                async with asyncio.timeout(timeout):
                    await self._outbox_signal.wait()
            except TimeoutError:
                return
        self._outbox_signal.clear()
