"""The message store contract on SQLite, plus what only SQLite has: the file, its writer,
group commit and kill -9."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from chat4all.adapters.sqlite.message_store import SQLiteMessageStore
from chat4all.adapters.sqlite.writer import SQLiteWriter
from chat4all.domain.errors import Conflict, IdempotencyConflict, Unavailable
from chat4all.ports.messages import MessageStore
from tests.contract.message_store_contract import T0, MessageStoreContract, text_message


class TestSQLiteMessageStore(MessageStoreContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[MessageStore]:
        store = await SQLiteMessageStore.open(tmp_path / "messages.db")
        try:
            yield store
        finally:
            await store.close()


async def test_data_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "messages.db"
    conversation, alice, bob = uuid4(), uuid4(), uuid4()
    store = await SQLiteMessageStore.open(path)
    first = await store.append(text_message(conversation, alice, (bob,)), T0, None)
    await store.close()

    store = await SQLiteMessageStore.open(path)
    try:
        assert await store.get(first.message.message_id) == first.message
        assert [e.event.data["message_id"] for e in await store.outbox_batch(10)] == [
            str(first.message.message_id)
        ]
        second = await store.append(text_message(conversation, alice, (bob,)), T0, None)
        assert second.message.sequence_number == 2
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone() == (1,)
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        await store.close()


async def test_expired_messages_are_deleted(tmp_path: Path) -> None:
    store = await SQLiteMessageStore.open(tmp_path / "messages.db")
    try:
        conversation, alice, bob = uuid4(), uuid4(), uuid4()
        short = await store.append(text_message(conversation, alice, (bob,)), T0, timedelta(days=1))
        forever = await store.append(text_message(conversation, alice, (bob,)), T0, None)
        assert await store.delete_expired(T0 + timedelta(hours=23)) == 0
        assert await store.delete_expired(T0 + timedelta(days=1)) == 1
        assert await store.get(short.message.message_id) is None
        assert await store.get(forever.message.message_id) == forever.message
        nxt = await store.append(text_message(conversation, alice, (bob,)), T0, None)
        assert nxt.message.sequence_number == 3  # sequence numbers are never reused
    finally:
        await store.close()


async def test_a_closed_store_is_unavailable(tmp_path: Path) -> None:
    store = await SQLiteMessageStore.open(tmp_path / "messages.db")
    await store.close()
    with pytest.raises(Unavailable):
        await store.append(text_message(uuid4(), uuid4(), (uuid4(),)), T0, None)
    with pytest.raises(Unavailable):
        await store.get(uuid4())


async def test_a_conflict_in_a_group_commit_spoils_nothing_else(tmp_path: Path) -> None:
    store = await SQLiteMessageStore.open(tmp_path / "messages.db")
    try:
        conversation, alice, bob = uuid4(), uuid4(), uuid4()
        taken = text_message(conversation, alice, (bob,), "first")
        await store.append(taken, T0, None)
        reused = text_message(conversation, alice, (bob,), "other", message_id=taken.message_id)
        results = await asyncio.gather(
            *(
                store.append(text_message(conversation, alice, (bob,)), T0, None)
                if i != 25
                else store.append(reused, T0, None)
                for i in range(50)
            ),
            return_exceptions=True,
        )
        assert isinstance(results[25], IdempotencyConflict)
        seqs = sorted(
            r.message.sequence_number for r in results if not isinstance(r, BaseException)
        )
        assert seqs == list(range(2, 51))
        assert len(await store.outbox_batch(100)) == 50
    finally:
        await store.close()


async def test_a_failing_job_rolls_back_alone(tmp_path: Path) -> None:
    writer = await SQLiteWriter.open(tmp_path / "w.db")
    try:
        await writer.run(lambda c: c.execute("CREATE TABLE t (k INTEGER PRIMARY KEY)"))

        def insert(
            k: int, then_fail: Exception | None = None
        ) -> Callable[[sqlite3.Connection], int]:
            def job(conn: sqlite3.Connection) -> int:
                conn.execute("INSERT INTO t (k) VALUES (?)", (k,))
                if then_fail is not None:
                    raise then_fail
                return k

            return job

        pending: list[asyncio.Future[object]] = [
            asyncio.ensure_future(job)
            for job in (
                writer.run(insert(1)),
                writer.run(insert(2, ValueError("boom"))),
                writer.run(insert(3)),
                writer.run(insert(1)),  # a duplicate key: IntegrityError
                writer.run(lambda c: c.execute("SELEC nonsense")),  # OperationalError
                writer.run(insert(4)),
            )
        ]
        # queued in the same turn of the event loop: one group commit
        results = await asyncio.gather(*pending, return_exceptions=True)
        assert [results[0], results[2], results[5]] == [1, 3, 4]
        assert isinstance(results[1], ValueError)
        assert isinstance(results[3], Conflict)
        assert isinstance(results[3].__cause__, sqlite3.IntegrityError)
        assert isinstance(results[4], Unavailable)
        assert isinstance(results[4].__cause__, sqlite3.OperationalError)
        rows = await writer.run(lambda c: c.execute("SELECT k FROM t ORDER BY k").fetchall())
        assert rows == [(1,), (3,), (4,)]
    finally:
        await writer.close()


async def test_a_locked_database_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "messages.db"
    store = await SQLiteMessageStore.open(path, busy_timeout=0.2)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        with pytest.raises(Unavailable) as raised:
            await asyncio.wait_for(
                store.append(text_message(uuid4(), uuid4(), (uuid4(),)), T0, None), 30
            )
        assert isinstance(raised.value.__cause__, sqlite3.OperationalError)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        await store.close()


_CRASHER = textwrap.dedent(
    """
    import asyncio, sys, uuid
    from datetime import UTC, datetime
    from chat4all.adapters.sqlite.message_store import SQLiteMessageStore
    from chat4all.domain.messages import NewMessage, Payload, PayloadType

    async def main() -> None:
        store = await SQLiteMessageStore.open(sys.argv[1])
        conversation = uuid.UUID(sys.argv[2])

        async def one() -> None:
            while True:
                new = NewMessage(uuid.uuid4(), conversation, uuid.uuid4(), (uuid.uuid4(),),
                                 Payload(PayloadType.TEXT, text="x" * 200))
                appended = await store.append(new, datetime.now(UTC), None)
                print(appended.message.message_id, appended.message.sequence_number, flush=True)

        await asyncio.gather(*(one() for _ in range(50)))

    asyncio.run(main())
    """
)


@pytest.mark.slow
async def test_kill_9_loses_nothing_acknowledged(tmp_path: Path) -> None:
    path, conversation = tmp_path / "messages.db", uuid4()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CRASHER,
        str(path),
        str(conversation),
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    acknowledged: list[tuple[UUID, int]] = []
    while len(acknowledged) < 3000:
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        assert line, "the writer process died"
        raw_id, raw_seq = line.split()
        acknowledged.append((UUID(raw_id.decode()), int(raw_seq)))
    process.send_signal(signal.SIGKILL)
    await process.wait()

    store = await SQLiteMessageStore.open(path)
    try:
        for message_id, seq in acknowledged:
            stored = await store.get(message_id)
            assert stored is not None and stored.sequence_number == seq
        history = await store.history(conversation, limit=1_000_000)
        assert [m.sequence_number for m in history] == list(range(1, len(history) + 1))
        outbox = await store.outbox_batch(1_000_000)
        assert len(outbox) == len(history)
        assert (await store.summaries([conversation]))[conversation].last_sequence_number == len(
            history
        )
    finally:
        await store.close()


async def test_a_document_that_cannot_be_encoded_is_invalid_input(tmp_path: Path) -> None:
    from dataclasses import replace

    from chat4all.domain.errors import InvalidInput

    store = await SQLiteMessageStore.open(tmp_path / "messages.db")
    try:
        new = replace(text_message(uuid4(), uuid4(), (uuid4(),)), metadata={"n": 2**70})
        with pytest.raises(InvalidInput):
            await store.append(new, T0, None)
        assert await store.outbox_batch(10) == []
    finally:
        await store.close()
