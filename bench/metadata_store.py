"""The metadata store's hot reads, SQLite against PostgreSQL, through `SqlMetadataStore`.

    uv run python -m bench.metadata_store [--postgres postgresql://chat4all:chat4all@127.0.0.1:5433/chat4all]
                                          [--calls 5000] [--concurrency 1,32]

Both stores get the same data (users, group conversations of `--members`) and the same calls:

    get_member         is this user a member? (the check on every send and read)
    list_members       a conversation's members (the recipients, when the cache misses)
    list_memberships   the caller's conversations (GET /v1/conversations)
    advance_watermarks one write, for scale: a read-modify-write with a row lock

one call at a time (latency) and `--concurrency` at once (throughput). PostgreSQL runs in a fresh
database made for the run and dropped after; SQLite in a temporary file.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import asyncpg

from bench.stats import summarize
from chat4all.adapters.sql import SqlMetadataStore, upgrade
from chat4all.domain.conversations import Conversation, ConversationType, Role
from chat4all.domain.users import User

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def populate(
    store: SqlMetadataStore, users: int, conversations: int, members: int
) -> list[tuple[UUID, list[UUID]]]:
    people = [
        User(uuid.uuid4(), f"u{i}_{uuid.uuid4().hex[:6]}", f"u{i}@x.org", "hash", T0, T0)
        for i in range(users)
    ]
    for person in people:
        await store.create_user(person)
    made = []
    for _ in range(conversations):
        chosen = random.sample(people, members)
        conversation = Conversation(
            uuid.uuid4(), ConversationType.GROUP, chosen[0].user_id, T0, T0, {"title": "bench"}
        )
        roles = [(chosen[0].user_id, Role.OWNER), *((p.user_id, Role.MEMBER) for p in chosen[1:])]
        await store.create_conversation(conversation, roles)
        made.append((conversation.conversation_id, [p.user_id for p in chosen]))
    return made


async def measure(
    calls: int, concurrency: int, one: Callable[[int], Awaitable[object]]
) -> tuple[float, list[float]]:
    latencies: list[float] = []

    async def worker(first: int) -> None:
        for i in range(first, calls, concurrency):
            start = time.perf_counter()
            await one(i)
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return calls / (time.perf_counter() - start), latencies


async def bench(name: str, url: str, args: argparse.Namespace) -> None:
    await upgrade(url)
    store = await SqlMetadataStore.connect(url)
    try:
        made = await populate(store, args.users, args.conversations, args.members)
        pairs = [(cid, uid) for cid, uids in made for uid in uids]
        users = sorted({uid for _, uids in made for uid in uids})
        rng = random.Random(7)
        picks = [rng.randrange(len(pairs)) for _ in range(args.calls)]
        seqs = iter(range(1, 10**9))
        cases: dict[str, Callable[[int], Awaitable[object]]] = {
            "get_member": lambda i: store.get_member(*pairs[picks[i]]),
            "list_members": lambda i: store.list_members(pairs[picks[i]][0]),
            "list_memberships": lambda i: store.list_memberships(users[picks[i] % len(users)]),
            "advance_watermarks": lambda i: store.advance_watermarks(
                *pairs[picks[i]], read_seq=next(seqs)
            ),
        }
        for case, one in cases.items():
            await measure(min(200, args.calls), 1, one)  # warm up: pool, statement caches
            for concurrency in args.concurrency:
                rate, latencies = await measure(args.calls, concurrency, one)
                s = summarize(latencies)
                print(
                    f"{name:<10} {case:<19} x{concurrency:<3} {rate:>8,.0f} calls/s  "
                    f"p50 {s.p50:6.2f}  p95 {s.p95:6.2f}  p99 {s.p99:6.2f} ms"
                )
    finally:
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--postgres", default="postgresql://chat4all:chat4all@127.0.0.1:5433/chat4all"
    )
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument(
        "--concurrency", type=lambda v: [int(x) for x in v.split(",")], default=[1, 32]
    )
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--members", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        await bench("sqlite", f"sqlite+aiosqlite:///{Path(folder) / 'metadata.db'}", args)

    database = f"bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(args.postgres)
    await admin.execute(f'CREATE DATABASE "{database}"')
    try:
        base, _, _ = args.postgres.rpartition("/")
        await bench("postgres", f"{base}/{database}", args)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
