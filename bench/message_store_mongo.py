"""Benchmark of the message store's append path on MongoDB (FerretDB here), or on SQLite for
comparison with the same workload.

    uv run python -m bench.message_store_mongo [--store mongo|sqlite] [--url URL]
        [--messages 5000] [--concurrency 50] [--conversations 1000]

Runs, each on a fresh database (dropped afterwards):
  spread    `concurrency` tasks append into `conversations` conversations, round robin
  one conv  the same tasks all append into one conversation (they take turns)
  + relay   `spread` with an outbox relay draining the outbox at the same time
Prints appends per second (wall clock) and the latency percentiles of one append.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
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
    background: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> None:
    latencies: list[float] = []

    async def worker(first: int) -> None:
        for i in range(first, total, concurrency):
            conversation, sender, recipient = conversations[i % len(conversations)]
            new = new_message(conversation, sender, recipient)
            started = time.perf_counter()
            await store.append(new, datetime.now(UTC), None)
            latencies.append(time.perf_counter() - started)

    helper = asyncio.create_task(background()) if background else None
    wall = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    wall = time.perf_counter() - wall
    if helper:
        helper.cancel()
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

            async def relay() -> None:
                while True:
                    entries = await store.outbox_batch(500)
                    if entries:
                        await store.outbox_done([e.entry_id for e in entries])
                    else:
                        await store.wait_for_outbox(0.1)

            await appends(f"spread + relay ({c} tasks)", store, n, c, spread, relay)


if __name__ == "__main__":
    asyncio.run(main())
