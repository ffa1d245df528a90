"""Benchmark of the message store's append path on MongoDB (FerretDB here), or on SQLite for
comparison with the same workload.

    uv run python -m bench.message_store_mongo [--store mongo|sqlite] [--url URL]
        [--messages 5000] [--concurrency 50] [--conversations 1000]

Runs, each on a fresh database (dropped afterwards):
  spread    `concurrency` tasks append into `conversations` conversations, round robin
  one conv  the same tasks all append into one conversation (they take turns)
  + relay   `spread` with an outbox relay draining the outbox at the same time
Prints appends per second (wall clock) and the latency percentiles of one append, and how fast
the relay emptied the outbox.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

from pymongo import AsyncMongoClient

from bench.stats import summarize
from chat4all.adapters.mongo.message_store import MongoMessageStore
from chat4all.adapters.sqlite.message_store import SQLiteMessageStore
from chat4all.domain.messages import NewMessage, Payload, PayloadType
from chat4all.ports.messages import MessageStore

StoreFactory = Callable[[], AbstractAsyncContextManager[MessageStore]]


def new_message(conversation_id: UUID, sender: UUID, recipient: UUID) -> NewMessage:
    return NewMessage(
        message_id=uuid4(),
        conversation_id=conversation_id,
        from_user_id=sender,
        to_user_ids=(recipient,),
        payload=Payload(PayloadType.TEXT, text="hello, this is a benchmark message " * 3),
    )


def mongo_stores(url: str) -> StoreFactory:
    @asynccontextmanager
    async def fresh() -> AsyncIterator[MessageStore]:
        name = f"chat4all_bench_{uuid4().hex[:12]}"
        store = await MongoMessageStore.connect(url, name)
        try:
            yield store
        finally:
            await store.close()
            client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
                url, serverSelectionTimeoutMS=2000, socketTimeoutMS=30_000
            )
            await client.drop_database(name)
            await client.close()

    return fresh


def sqlite_stores(folder: Path) -> StoreFactory:
    @asynccontextmanager
    async def fresh() -> AsyncIterator[MessageStore]:
        store = await SQLiteMessageStore.open(folder / f"{uuid4().hex}.db")
        try:
            yield store
        finally:
            await store.close()

    return fresh


async def appends(
    name: str,
    store: MessageStore,
    total: int,
    concurrency: int,
    conversations: list[tuple[UUID, UUID, UUID]],
) -> None:
    latencies: list[float] = []

    async def worker(first: int) -> None:
        for i in range(first, total, concurrency):
            conversation, sender, recipient = conversations[i % len(conversations)]
            new = new_message(conversation, sender, recipient)
            started = time.perf_counter()
            await store.append(new, datetime.now(UTC), None)
            latencies.append(time.perf_counter() - started)

    wall = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    wall = time.perf_counter() - wall
    s = summarize(latencies)
    print(
        f"{name:<28} {total:>6} appends  {total / wall:>7,.0f}/s  "
        f"latency ms p50 {s.p50:6.1f}  p95 {s.p95:6.1f}  p99 {s.p99:6.1f}  max {s.max:6.1f}",
        flush=True,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", choices=("mongo", "sqlite"), default="mongo")
    parser.add_argument("--url", default="mongodb://127.0.0.1:27017/")
    parser.add_argument("--messages", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--conversations", type=int, default=1000)
    args = parser.parse_args()
    print(
        f"{args.store}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}", flush=True
    )
    with tempfile.TemporaryDirectory(prefix="chat4all-bench-") as tmp:
        stores = mongo_stores(args.url) if args.store == "mongo" else sqlite_stores(Path(tmp))
        spread = [(uuid4(), uuid4(), uuid4()) for _ in range(args.conversations)]
        n, c = args.messages, args.concurrency
        async with stores() as store:
            await appends(f"spread ({c} tasks)", store, n, c, spread)
        async with stores() as store:
            await appends(f"one conv ({c} tasks)", store, n, c, spread[:1])
        async with stores() as store:
            await with_relay(store, n, c, spread)


async def with_relay(
    store: MessageStore, total: int, concurrency: int, spread: list[tuple[UUID, UUID, UUID]]
) -> None:
    """`spread` with an outbox relay (batches of 500, as the real one) publishing to nowhere;
    then how long the relay took to empty the outbox."""
    relayed, sending = 0, True

    async def relay() -> None:
        # Stops by itself rather than being cancelled: FerretDB would go on running a
        # cancelled call, and dropping the database under it can stop the whole server.
        nonlocal relayed
        while True:
            entries = await store.outbox_batch(500)
            if entries:
                await store.outbox_done([e.entry_id for e in entries])
                relayed += len(entries)
            elif sending:
                await store.wait_for_outbox(0.1)
            else:
                return

    started = time.perf_counter()
    running = asyncio.create_task(relay())
    await appends(f"spread + relay ({concurrency} tasks)", store, total, concurrency, spread)
    sending = False
    await running
    wall = time.perf_counter() - started
    print(
        f"{'  relay':<28} {relayed:>6} relayed  {relayed / wall:>7,.0f}/s  (until the outbox was empty)"
    )


if __name__ == "__main__":
    asyncio.run(main())
