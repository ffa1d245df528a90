"""Hub publish -> receive across two Redis hub instances (two "gateways"), and the in-process
hub for comparison.

    uv run python -m bench.realtime_redis [--url redis://127.0.0.1:6379/0] [--seconds 3]

Gateway A publishes; gateway B holds one subscription for each of `--users` users. Both hubs
run in this one process, each with its own connection pool and pub/sub connection, so a frame
really goes A -> Redis -> B; the event loop is shared, so the figures include both sides' CPU.

    latency     open loop at `--rate` frames/s to one random user each: publish -> get()
                percentiles
    throughput  closed loop, `--concurrency` publishers, one user each: frames received per second
    fan-out     closed loop, each publish to a group of `--group` users (one pipelined round
                trip): frames delivered per second

Keys and channels live under a fresh prefix; nothing is left behind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import struct
import time
import uuid
from collections.abc import Awaitable, Callable
from uuid import UUID

from bench.stats import Summary, summarize
from chat4all.adapters.memory.realtime import InProcessHub
from chat4all.adapters.redis import Keys, RedisHub, open_client
from chat4all.ports.realtime import RealtimeHub, Subscription, SubscriptionLost

_STAMP = struct.Struct("<q")  # perf_counter_ns when published, at the head of the frame
PAD = b'{"type": "message.new", "data": {"text": "' + b"x" * 300 + b'"}}'


def stamped() -> bytes:
    return _STAMP.pack(time.perf_counter_ns()) + PAD


class Receivers:
    """One reading task per subscription; records publish -> receive latency of each frame."""

    def __init__(self, subs: list[Subscription]) -> None:
        self.latencies: list[float] = []
        self.count = 0
        self.lost = 0  # subscriptions cut off for falling behind: the figures then undercount
        self._target = 2**62
        self._reached = asyncio.Event()
        self._tasks = [asyncio.create_task(self._read(s)) for s in subs]

    async def _read(self, sub: Subscription) -> None:
        while True:
            try:
                frame = await sub.get()
            except SubscriptionLost:
                self.lost += 1
                return
            now = time.perf_counter_ns()
            (sent,) = _STAMP.unpack_from(frame)
            self.latencies.append((now - sent) / 1e9)
            self.count += 1
            if self.count >= self._target:
                self._reached.set()

    async def until(self, count: int, timeout: float = 30.0) -> None:
        """Wait until `count` frames have arrived (or `timeout`: some were lost)."""
        self._target = count
        if self.count < count:
            self._reached.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reached.wait(), timeout)

    def reset(self) -> None:
        self.latencies, self.count = [], 0
        self._target = 2**62

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def open_loop(
    publisher: RealtimeHub, users: list[UUID], receivers: Receivers, rate: float, seconds: float
) -> Summary:
    receivers.reset()
    total = int(rate * seconds)
    start = time.perf_counter()
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await publisher.publish([random.choice(users)], stamped())
    await receivers.until(total)
    return summarize(receivers.latencies)


async def closed_loop(
    publish: Callable[[int], Awaitable[None]],
    receivers: Receivers,
    concurrency: int,
    seconds: float,
    per_publish: int,
) -> tuple[float, float, Summary]:
    """(publishes/s, frames received/s, latency) with `concurrency` publishers for `seconds`."""
    receivers.reset()
    published = 0
    stop = time.perf_counter() + seconds

    async def publisher(worker: int) -> None:
        nonlocal published
        while time.perf_counter() < stop:
            await publish(worker)
            published += 1
            await asyncio.sleep(0)  # the in-process hub's publish never yields to the readers

    start = time.perf_counter()
    await asyncio.gather(*(publisher(w) for w in range(concurrency)))
    await receivers.until(published * per_publish)
    elapsed = time.perf_counter() - start
    return published / elapsed, receivers.count / elapsed, summarize(receivers.latencies)


async def run(
    name: str, publisher: RealtimeHub, subscriber: RealtimeHub, args: argparse.Namespace
) -> None:
    users = [uuid.uuid4() for _ in range(args.users)]
    subs = [await subscriber.subscribe(u) for u in users]
    receivers = Receivers(subs)
    try:
        await open_loop(publisher, users, receivers, args.rate, 0.5)  # warm up
        lat = await open_loop(publisher, users, receivers, args.rate, args.seconds)
        print(
            f"{name:<10} latency    {args.rate:>6.0f}/s open loop   "
            f"p50 {lat.p50:6.2f}  p95 {lat.p95:6.2f}  p99 {lat.p99:6.2f}  max {lat.max:6.2f} ms"
        )

        async def one(worker: int) -> None:
            await publisher.publish([users[worker % len(users)]], stamped())

        pubs, frames, lat = await closed_loop(one, receivers, args.concurrency, args.seconds, 1)
        print(
            f"{name:<10} throughput {args.concurrency:>4} publishers "
            f"{frames:>9,.0f} frames/s                p50 {lat.p50:6.2f}  p99 {lat.p99:6.2f} ms"
        )

        groups = [users[i : i + args.group] for i in range(0, len(users), args.group)]

        async def group(worker: int) -> None:
            await publisher.publish(groups[worker % len(groups)], stamped())

        pubs, frames, lat = await closed_loop(
            group, receivers, args.concurrency, args.seconds, args.group
        )
        print(
            f"{name:<10} fan-out    {args.concurrency:>4} publishers "
            f"{pubs:>9,.0f} publishes/s x {args.group} = {frames:>9,.0f} frames/s  "
            f"p50 {lat.p50:6.2f}  p99 {lat.p99:6.2f} ms"
        )
        if receivers.lost:
            print(f"{name:<10} {receivers.lost} subscriptions fell behind and were cut off")
    finally:
        await receivers.stop()
        for sub in subs:
            await sub.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--group", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()

    keys = Keys(f"bench_{uuid.uuid4().hex[:12]}:")
    a_client, b_client = open_client(args.url), open_client(args.url)
    a, b = RedisHub(a_client, keys), RedisHub(b_client, keys)
    try:
        await run("redis A->B", a, b, args)
    finally:
        await a.close()
        await b.close()
        await a_client.aclose()
        await b_client.aclose()
    local = InProcessHub()
    await run("in-process", local, local, args)


if __name__ == "__main__":
    asyncio.run(main())
