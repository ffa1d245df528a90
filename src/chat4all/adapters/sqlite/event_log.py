"""The embedded event bus: a durable, partitioned log in one SQLite file, with consumer groups.

Kafka's semantics on a table: a topic is split in `partitions`; an event goes to partition
`crc32(key) % partitions`, so one key's events keep their order; each (topic, partition) has its
own gap-free-in-practice offsets; a consumer group's progress is its committed `next_offset` per
partition; delivery is at-least-once (what was fetched but not committed comes again to the next
consumer of the group). Events cross as JSON bytes (`Event.to_dict()`), never as Python objects.

Limits, on purpose: every consumer reads every partition of its topics (there is no partition
assignment inside a group, so run one consumer per group and process), and the partition count is
fixed by the file when it is created.
"""

from __future__ import annotations

import asyncio
import sqlite3
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Final

import orjson

from chat4all.adapters.sqlite.writer import DEFAULT_BUSY_TIMEOUT, SQLiteReader, SQLiteWriter
from chat4all.domain.errors import InvalidInput, Unavailable
from chat4all.domain.events import Event
from chat4all.ports.bus import Record

SCHEMA_VERSION: Final = 1
DEFAULT_POLL_INTERVAL: Final = 0.5
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_PUBLISH_ATTEMPTS: Final = 3

_SCHEMA: Final = """
CREATE TABLE log (
    topic       TEXT    NOT NULL,
    partition   INTEGER NOT NULL,
    offset      INTEGER NOT NULL,
    event       BLOB    NOT NULL,
    appended_at INTEGER NOT NULL,
    PRIMARY KEY (topic, partition, offset)
);
CREATE TABLE consumer_offsets (
    group_name  TEXT    NOT NULL,
    topic       TEXT    NOT NULL,
    partition   INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (group_name, topic, partition)
) WITHOUT ROWID;
CREATE TABLE log_settings (
    name  TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
"""

TopicPartition = tuple[str, int]


def partition_of(key: str, partitions: int) -> int:
    """The partition of `key`: stable across processes and restarts (unlike `hash()`)."""
    return zlib.crc32(key.encode()) % partitions


def _micros(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(microseconds=1)


class _OffsetsMoved(Exception):
    """Another process appended to this file: our in-memory offsets are behind."""


def _create_schema_txn(conn: sqlite3.Connection, partitions: int) -> int:
    """Create the tables if missing; the partition count of the file (the first open's)."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version == 0:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(
            "INSERT INTO log_settings (name, value) VALUES ('partitions', ?)", (str(partitions),)
        )
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    elif version != SCHEMA_VERSION:
        raise Unavailable(
            f"the event log file has schema version {version}; this code knows {SCHEMA_VERSION}"
        )
    # Keys already placed by the stored count must stay where they are, so the file wins.
    ((stored,),) = conn.execute(
        "SELECT value FROM log_settings WHERE name = 'partitions'"
    ).fetchall()
    return int(stored)


def _next_offsets_txn(conn: sqlite3.Connection) -> dict[TopicPartition, int]:
    rows = conn.execute(
        "SELECT topic, partition, max(offset) + 1 FROM log GROUP BY topic, partition"
    ).fetchall()
    return {(topic, partition): next_offset for topic, partition, next_offset in rows}


def _committed_txn(
    conn: sqlite3.Connection, group: str, topics: Sequence[str]
) -> dict[TopicPartition, int]:
    marks = ",".join("?" * len(topics))
    rows = conn.execute(
        "SELECT topic, partition, next_offset FROM consumer_offsets "
        f"WHERE group_name = ? AND topic IN ({marks})",
        (group, *topics),
    ).fetchall()
    return {(topic, partition): next_offset for topic, partition, next_offset in rows}


def _lag_txn(conn: sqlite3.Connection, group: str, topics: Sequence[str]) -> dict[str, int]:
    committed = _committed_txn(conn, group, topics)
    lag = dict.fromkeys(topics, 0)
    for (topic, partition), end in _next_offsets_txn(conn).items():
        if topic in lag:
            lag[topic] += max(end - committed.get((topic, partition), 0), 0)
    return lag


def _commit_txn(conn: sqlite3.Connection, group: str, marks: dict[TopicPartition, int]) -> None:
    conn.executemany(
        "INSERT INTO consumer_offsets (group_name, topic, partition, next_offset) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (group_name, topic, partition) "
        "DO UPDATE SET next_offset = max(next_offset, excluded.next_offset)",
        [(group, topic, partition, offset) for (topic, partition), offset in marks.items()],
    )


def _read_txn(
    conn: sqlite3.Connection,
    partitions: Sequence[TopicPartition],
    positions: dict[TopicPartition, int],
    max_records: int,
) -> list[Record]:
    records: list[Record] = []
    for topic, partition in partitions:
        wanted = max_records - len(records)
        if wanted <= 0:
            break
        rows = conn.execute(
            "SELECT offset, event FROM log WHERE topic = ? AND partition = ? AND offset >= ? "
            "ORDER BY offset LIMIT ?",
            (topic, partition, positions.get((topic, partition), 0), wanted),
        ).fetchall()
        records.extend(
            Record(topic, partition, offset, Event.from_dict(orjson.loads(raw)))
            for offset, raw in rows
        )
    return records


class SQLiteEventLog:
    """`EventBus` on one SQLite file, durable when `publish` returns (group-committed)."""

    def __init__(
        self,
        writer: SQLiteWriter,
        reader: SQLiteReader,
        partitions: int,
        next_offsets: dict[TopicPartition, int],
        poll_interval: float,
    ) -> None:
        self.partitions = partitions
        self.poll_interval = poll_interval
        self._writer = writer
        self._reader = reader
        # Owned by the writer: only publish and prune jobs read or change it.
        self._next_offsets = next_offsets
        self._offsets_stale = False
        self._waiters: dict[asyncio.Future[None], frozenset[str]] = {}
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: str | Path,
        partitions: int = 4,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    ) -> SQLiteEventLog:
        """Open (creating if missing) the log in the file `path`. `poll_interval` bounds how late
        a consumer sees what another process appended to the same file; `busy_timeout` how long a
        statement waits for another process's lock before the log reports `Unavailable`."""
        if partitions < 1:
            raise InvalidInput("an event log needs at least one partition")
        writer = await SQLiteWriter.open(path, busy_timeout=busy_timeout)
        try:
            stored = await writer.run(partial(_create_schema_txn, partitions=partitions))
            next_offsets = await writer.run(_next_offsets_txn)
        except BaseException:
            await writer.close()
            raise
        reader = SQLiteReader(path, busy_timeout=busy_timeout)
        return cls(writer, reader, stored, next_offsets, poll_interval)

    async def close(self) -> None:
        self._closed = True
        self._wake(None)
        await self._writer.close()
        await self._reader.close()

    async def ping(self) -> None:
        await self._reader.run(lambda conn: conn.execute("SELECT 1").fetchall())

    async def publish(self, events: Sequence[Event]) -> None:
        if not events:
            return
        batch = list(events)
        topics = frozenset(e.type for e in batch)
        for attempt in range(_PUBLISH_ATTEMPTS):
            try:
                await self._writer.run(
                    partial(
                        self._publish_txn, events=batch, appended_at=_micros(datetime.now(UTC))
                    ),
                    after_commit=partial(self._wake, topics),
                    after_rollback=self._mark_offsets_stale,
                )
                return
            except _OffsetsMoved as e:
                if attempt == _PUBLISH_ATTEMPTS - 1:
                    raise Unavailable("the event log is being appended to elsewhere") from e

    def consumer(self, group: str, topics: Sequence[str]) -> SQLiteConsumer:
        if not topics:
            raise InvalidInput("a consumer needs at least one topic")
        return SQLiteConsumer(self, group, tuple(dict.fromkeys(topics)))

    async def prune(self, older_than: datetime) -> int:
        """Delete records appended before `older_than` that every group reading their topic has
        committed (a topic no group has committed on is pruned by age alone, as Kafka's retention
        does). The newest record of each partition is kept so offsets survive a restart."""
        return await self._writer.run(
            partial(self._prune_txn, cutoff=_micros(older_than)),
            after_rollback=self._mark_offsets_stale,
        )

    # --- writer jobs -------------------------------------------------------------------

    def _mark_offsets_stale(self) -> None:
        self._offsets_stale = True

    def _fresh_offsets(self, conn: sqlite3.Connection) -> dict[TopicPartition, int]:
        if self._offsets_stale:
            self._next_offsets = _next_offsets_txn(conn)
            self._offsets_stale = False
        return self._next_offsets

    def _publish_txn(self, conn: sqlite3.Connection, events: list[Event], appended_at: int) -> None:
        known = self._fresh_offsets(conn)
        taken: dict[TopicPartition, int] = {}
        rows = []
        for event in events:
            where = (event.type, partition_of(event.key, self.partitions))
            offset = taken.get(where, known.get(where, 0))
            taken[where] = offset + 1
            rows.append((*where, offset, orjson.dumps(event.to_dict()), appended_at))
        try:
            conn.executemany(
                "INSERT INTO log (topic, partition, offset, event, appended_at) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )
        except sqlite3.IntegrityError as e:
            self._offsets_stale = True
            raise _OffsetsMoved(str(e)) from e
        known.update(taken)  # only now: the job's savepoint can no longer be undone by us

    def _prune_txn(self, conn: sqlite3.Connection, cutoff: int) -> int:
        committed: dict[str, dict[str, dict[int, int]]] = {}  # topic -> group -> partition
        for group, topic, partition, next_offset in conn.execute(
            "SELECT group_name, topic, partition, next_offset FROM consumer_offsets"
        ).fetchall():
            committed.setdefault(topic, {}).setdefault(group, {})[partition] = next_offset
        deleted = 0
        for (topic, partition), next_offset in self._fresh_offsets(conn).items():
            below = next_offset - 1  # keep the newest record
            for by_partition in committed.get(topic, {}).values():
                below = min(below, by_partition.get(partition, 0))
            if below <= 0:
                continue
            cursor = conn.execute(
                "DELETE FROM log WHERE topic = ? AND partition = ? AND offset < ? "
                "AND appended_at < ?",
                (topic, partition, below, cutoff),
            )
            deleted += cursor.rowcount
        return deleted

    # --- waking consumers (event loop) ----------------------------------------------------

    def _waiter(self, topics: frozenset[str]) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[future] = topics
        return future

    def _forget(self, waiter: asyncio.Future[None]) -> None:
        self._waiters.pop(waiter, None)

    def _wake(self, topics: frozenset[str] | None) -> None:
        for waiter, wanted in list(self._waiters.items()):
            if (topics is None or not wanted.isdisjoint(topics)) and not waiter.done():
                waiter.set_result(None)


class SQLiteConsumer:
    """One member of a consumer group; not for concurrent `fetch` calls."""

    def __init__(self, log: SQLiteEventLog, group: str, topics: tuple[str, ...]) -> None:
        self.group = group
        self.topics = topics
        self._log = log
        self._wanted = frozenset(topics)
        self._partitions = [(t, p) for t in topics for p in range(log.partitions)]
        self._positions: dict[TopicPartition, int] | None = None
        self._turn = 0  # which partition reads first, so a busy one cannot starve the others
        self._waiting: asyncio.Future[None] | None = None
        self._closed = False

    async def fetch(self, max_records: int, timeout: float) -> list[Record]:
        if max_records <= 0 or self._closed:
            return []
        log = self._log
        if self._positions is None:
            self._positions = await log._reader.run(
                partial(_committed_txn, group=self.group, topics=self.topics)
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if log._closed:
                raise Unavailable("the event log is closed")
            # Registered before reading, so a publish that commits during the read still wakes us.
            waiter = self._waiting = log._waiter(self._wanted)
            try:
                self._turn = (self._turn + 1) % len(self._partitions)
                order = self._partitions[self._turn :] + self._partitions[: self._turn]
                records = await log._reader.run(
                    partial(
                        _read_txn,
                        partitions=order,
                        positions=dict(self._positions),
                        max_records=max_records,
                    )
                )
                if records:
                    for record in records:
                        self._positions[(record.topic, record.partition)] = record.offset + 1
                    return records
                remaining = deadline - loop.time()
                if remaining <= 0 or self._closed:
                    return []
                try:
                    # The poll interval catches appends made by another process on the file.
                    async with asyncio.timeout(min(remaining, log.poll_interval)):
                        await waiter
                except TimeoutError:
                    pass
            finally:
                log._forget(waiter)

    async def commit(self, records: Sequence[Record]) -> None:
        marks: dict[TopicPartition, int] = {}
        for record in records:
            where = (record.topic, record.partition)
            marks[where] = max(marks.get(where, 0), record.offset + 1)
        if marks:
            await self._log._writer.run(partial(_commit_txn, group=self.group, marks=marks))

    async def lag(self) -> dict[str, int]:
        return await self._log._reader.run(partial(_lag_txn, group=self.group, topics=self.topics))

    async def close(self) -> None:
        self._closed = True
        if self._waiting is not None and not self._waiting.done():
            self._waiting.set_result(None)  # a fetch in progress returns [] now
