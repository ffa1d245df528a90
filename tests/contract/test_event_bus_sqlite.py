"""The event bus contract on the SQLite log, plus what only the log has: its file, retention,
and a second process appending to the same file."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chat4all.adapters.sqlite.event_log import SQLiteEventLog
from chat4all.domain.errors import Unavailable
from chat4all.ports.bus import EventBus
from tests.contract.event_bus_contract import (
    EventBusContract,
    OpenBus,
    event,
    fetch_n,
    nothing_more,
    unique,
)


class TestSQLiteEventLog(EventBusContract):
    prompt_wakeup_seconds = 0.3  # below the 0.5 s poll: only the in-process wake-up is that fast

    @pytest.fixture
    async def open_bus(self, tmp_path: Path) -> AsyncIterator[OpenBus]:
        opened: list[SQLiteEventLog] = []

        async def open_bus() -> EventBus:
            log = await SQLiteEventLog.open(tmp_path / "bus.db")
            opened.append(log)
            return log

        yield open_bus
        for log in opened:
            await log.close()


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[SQLiteEventLog]:
    log = await SQLiteEventLog.open(tmp_path / "bus.db")
    yield log
    await log.close()


async def test_prune_deletes_only_old_records_every_group_committed(log: SQLiteEventLog) -> None:
    topic, other = unique("test.prune"), unique("test.unread")
    await log.publish([event(topic, "k", i) for i in range(10)])
    await log.publish([event(other, "k", i) for i in range(3)])
    fast, slow = log.consumer("fast", [topic]), log.consumer("slow", [topic])
    records = await fetch_n(fast, 10)
    await fast.commit(records)
    await slow.commit((await fetch_n(slow, 10))[:4])

    assert await log.prune(datetime.now(UTC) - timedelta(hours=1)) == 0  # nothing old enough
    # `topic`: below slow's offset 4; `other`: no group, so by age, keeping the newest record.
    assert await log.prune(datetime.now(UTC) + timedelta(seconds=1)) == 4 + 2
    assert await log.prune(datetime.now(UTC) + timedelta(seconds=1)) == 0

    late = log.consumer("slow", [topic])
    assert [r.event.data["n"] for r in await fetch_n(late, 6)] == list(range(4, 10))
    newcomer = log.consumer("new", [other])
    assert [r.event.data["n"] for r in await fetch_n(newcomer, 1)] == [2]


async def test_offsets_continue_after_pruning_and_restart(tmp_path: Path) -> None:
    path, topic = tmp_path / "bus.db", unique("test.prune")
    log = await SQLiteEventLog.open(path)
    await log.publish([event(topic, "k", i) for i in range(5)])
    group = log.consumer("g", [topic])
    await group.commit(await fetch_n(group, 5))
    assert await log.prune(datetime.now(UTC) + timedelta(seconds=1)) == 4
    await log.close()

    log = await SQLiteEventLog.open(path)
    try:
        await log.publish([event(topic, "k", 5)])
        [record] = await fetch_n(log.consumer("g", [topic]), 1)
        assert (record.event.data["n"], record.offset) == (5, 5)
    finally:
        await log.close()


async def test_the_file_keeps_its_partition_count(tmp_path: Path) -> None:
    path = tmp_path / "bus.db"
    first = await SQLiteEventLog.open(path, partitions=8)
    await first.close()
    second = await SQLiteEventLog.open(path, partitions=2)
    try:
        assert second.partitions == 8
    finally:
        await second.close()


async def test_two_processes_on_one_file(tmp_path: Path) -> None:
    """Two instances on one file stand for two processes: no shared memory between them."""
    topic, path = unique("test.shared"), tmp_path / "bus.db"
    mine = await SQLiteEventLog.open(path, poll_interval=0.1)
    theirs = await SQLiteEventLog.open(path)
    try:
        await mine.publish([event(topic, "k", 0)])
        await theirs.publish([event(topic, "k", 1)])  # its in-memory offset is behind: retried
        await mine.publish([event(topic, "k", 2)])
        consumer = mine.consumer("g", [topic])
        records = await fetch_n(consumer, 3)
        assert [(r.offset, r.event.data["n"]) for r in records] == [(0, 0), (1, 1), (2, 2)]

        waiting = asyncio.create_task(consumer.fetch(10, timeout=5))
        await asyncio.sleep(0.05)
        started = time.monotonic()  # their publish does not wake us: the poll finds it
        await theirs.publish([event(topic, "k", 3)])
        [record] = await waiting
        assert record.event.data["n"] == 3 and time.monotonic() - started < 1.0
        assert await nothing_more(consumer)
    finally:
        await mine.close()
        await theirs.close()


async def test_a_closed_log_is_unavailable(tmp_path: Path) -> None:
    log = await SQLiteEventLog.open(tmp_path / "bus.db")
    consumer = log.consumer("g", ["test.closed"])
    await log.close()
    with pytest.raises(Unavailable):
        await log.publish([event("test.closed", "k", 1)])
    with pytest.raises(Unavailable):
        await consumer.fetch(10, timeout=0.1)


async def test_closing_a_consumer_ends_its_wait(log: SQLiteEventLog) -> None:
    consumer = log.consumer("g", [unique("test.idle")])
    waiting = asyncio.create_task(consumer.fetch(10, timeout=30))
    await asyncio.sleep(0.05)
    await consumer.close()
    assert await asyncio.wait_for(waiting, 1) == []
