"""Micro-benchmark of the embedded hot path: message appends, bus publishes, and the pipeline
append -> outbox relay -> bus -> consumer, each with many concurrent tasks.

    uv run python bench/micro_store.py [--messages 20000] [--concurrency 200]

Prints operations per second (wall clock) and the event loop thread's CPU time per operation,
which is what the rest of a one-process server (HTTP, WebSocket) has to share.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

from chat4all.adapters.sqlite.event_log import SQLiteEventLog
from chat4all.adapters.sqlite.message_store import SQLiteMessageStore
from chat4all.domain.events import Event
from chat4all.domain.messages import NewMessage, Payload, PayloadType


def new_message(conversation_id: UUID, sender: UUID, recipient: UUID) -> NewMessage:
    return NewMessage(
        message_id=uuid4(),
        conversation_id=conversation_id,
        from_user_id=sender,
        to_user_ids=(recipient,),
        payload=Payload(PayloadType.TEXT, text="hello, this is a benchmark message " * 3),
    )


async def timed(name: str, ops: int, run: Callable[[], Awaitable[None]]) -> None:
    cpu, wall = time.thread_time(), time.perf_counter()
    await run()
    wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    print(
        f"{name:<34} {ops:>7} ops  {ops / wall:>9,.0f} ops/s  loop CPU {cpu / ops * 1e6:6.1f} µs/op"
    )


async def in_tasks(total: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> None:
    async def worker(first: int) -> None:
        for i in range(first, total, concurrency):
            await one(i)

    await asyncio.gather(*(worker(w) for w in range(concurrency)))


async def bench_appends(folder: Path, total: int, concurrency: int) -> None:
    store = await SQLiteMessageStore.open(folder / "appends.db")
    conversations = [(uuid4(), uuid4(), uuid4()) for _ in range(1000)]

    async def one(i: int) -> None:
        conversation, sender, recipient = conversations[i % len(conversations)]
        await store.append(new_message(conversation, sender, recipient), datetime.now(UTC), None)

    await timed("append (200 tasks)", total, lambda: in_tasks(total, concurrency, one))
    await store.close()


async def bench_publish(folder: Path, total: int, concurrency: int) -> None:
    log = await SQLiteEventLog.open(folder / "publish.db")
    now = datetime.now(UTC)
    data = {"message_id": str(uuid4()), "text": "x" * 400}

    async def one(i: int) -> None:
        await log.publish([Event(type="message.sent", key=str(i % 1000), data=data, time=now)])

    await timed("publish 1 event (200 tasks)", total, lambda: in_tasks(total, concurrency, one))

    async def batches() -> None:
        for start in range(0, total, 100):
            events = [
                Event(type="message.sent", key=str(i % 1000), data=data, time=now)
                for i in range(start, start + 100)
            ]
            await log.publish(events)

    await timed("publish batches of 100", total, batches)
    consumer = log.consumer("bench", ["message.sent"])

    async def consume() -> None:
        seen = 0
        while seen < 2 * total:
            records = await consumer.fetch(500, timeout=1)
            await consumer.commit(records)
            seen += len(records)

    await timed("fetch+commit 500 at a time", 2 * total, consume)
    await log.close()


async def bench_pipeline(folder: Path, total: int, concurrency: int) -> None:
    """Appends with the outbox relay and one consumer group running at the same time."""
    store = await SQLiteMessageStore.open(folder / "pipeline-messages.db")
    log = await SQLiteEventLog.open(folder / "pipeline-bus.db")
    consumer = log.consumer("router", ["message.sent"])
    conversations = [(uuid4(), uuid4(), uuid4()) for _ in range(1000)]
    sending = True

    async def relay() -> None:
        while sending or await store.outbox_batch(1):
            entries = await store.outbox_batch(500)
            if not entries:
                await store.wait_for_outbox(0.1)
                continue
            await log.publish([e.event for e in entries])
            await store.outbox_done([e.entry_id for e in entries])

    async def consume() -> None:
        seen = 0
        while seen < total:
            records = await consumer.fetch(500, timeout=1)
            await consumer.commit(records)
            seen += len(records)

    async def one(i: int) -> None:
        conversation, sender, recipient = conversations[i % len(conversations)]
        await store.append(new_message(conversation, sender, recipient), datetime.now(UTC), None)

    async def run() -> None:
        nonlocal sending
        background = [asyncio.create_task(relay()), asyncio.create_task(consume())]
        await in_tasks(total, concurrency, one)
        sending = False
        await asyncio.gather(*background)

    await timed("append -> relay -> bus -> consumer", total, run)
    await store.close()
    await log.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chat4all-bench-") as tmp:
        folder = Path(tmp)
        await bench_appends(folder, args.messages, args.concurrency)
        await bench_publish(folder, args.messages, args.concurrency)
        await bench_pipeline(folder, args.messages, args.concurrency)


if __name__ == "__main__":
    asyncio.run(main())
