"""S1 on the cluster profile, and a scaling run: one gateway and one of each worker, then two.

Every process runs on this machine, behind nginx, on the servers scripts/infra/ starts
(`make bench` starts them). Usage: python -m bench.cluster [--duration 15] [--senders 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from bench import load
from bench.__main__ import report, say, section
from bench.load import Meter, RunResult
from chat4all.devcluster import DevCluster, free_port

SERVERS = {
    "CHAT4ALL_MONGO_URL": "mongodb://127.0.0.1:27017/",
    "CHAT4ALL_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
    "CHAT4ALL_REDIS_URL": "redis://127.0.0.1:6379/0",
    "CHAT4ALL_ETCD_URL": "http://127.0.0.1:2379",
}
POSTGRES = "postgresql://chat4all:chat4all@127.0.0.1:5433"


@asynccontextmanager
async def cluster(size: int) -> AsyncIterator[str]:
    """`size` gateways and `size` of each worker (and of the gRPC services) behind nginx, in a
    namespace and database of their own; yields nginx's URL."""
    namespace = f"bench_{os.getpid()}_{size}"
    conn = await asyncpg.connect(f"{POSTGRES}/chat4all")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{namespace}"')
        await conn.execute(f'CREATE DATABASE "{namespace}"')
    finally:
        await conn.close()
    workdir = Path(tempfile.mkdtemp(prefix="chat4all-bench-cluster-"))
    local = DevCluster(
        workdir,
        env={
            **SERVERS,
            "CHAT4ALL_NAMESPACE": namespace,
            "CHAT4ALL_METADATA_URL": f"{POSTGRES.replace('postgresql', 'postgresql+asyncpg')}/{namespace}",
            "CHAT4ALL_MONGO_DATABASE": namespace,
            "CHAT4ALL_JWT_SECRET": "bench-secret-" + "x" * 40,
            "CHAT4ALL_PASSWORD_HASH_TIME_COST": "1",
            "CHAT4ALL_SEND_RATE_PER_SECOND": "0",
            "CHAT4ALL_PASSWORD_HASH_MEMORY_KIB": "1024",
        },
        gateway_ports=tuple(free_port() for _ in range(size)),
        replicas=size,
        nginx_port=free_port(),
    )
    try:
        await asyncio.to_thread(local.start)
        yield f"http://127.0.0.1:{local.nginx_port}"
    finally:
        await asyncio.to_thread(local.stop)


async def run_size(size: int, a: argparse.Namespace, runs: dict[str, RunResult]) -> None:
    common = {"warmup": a.warmup, "duration": a.duration, "drain": a.drain}
    meter = Meter(None)  # many processes: the machine's CPU is what the report shows
    async with cluster(size) as url:
        population = await load.private_pairs(url, a.senders, True)
        try:
            closed = await load.closed_loop(f"cluster x{size} S1 closed-loop", population.targets,
                                            concurrency=a.senders, meter=meter, **common)  # fmt: skip
            runs[f"cluster{size}_closed"] = closed
            report(closed)
            await asyncio.sleep(3)
            fixed = await load.open_loop(f"cluster x{size} S1 open-loop {a.rate:g}/s",
                                         population.targets, rate=a.rate, meter=meter,
                                         **common)  # fmt: skip
            runs[f"cluster{size}_open"] = fixed
            report(fixed)
        finally:
            await population.close()


async def main(a: argparse.Namespace) -> int:
    say(f"Chat4All cluster bench: {a.duration:g} s measured after {a.warmup:g} s of warm-up, "
        f"{a.senders} senders, on {os.cpu_count()} cores shared by every process")  # fmt: skip
    runs: dict[str, RunResult] = {}
    for size in a.sizes:
        with section(f"S1 on the cluster: {size} gateway(s), {size} of each worker, nginx"):
            await run_size(size, a, runs)
    return 0


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--drain", type=float, default=60.0)
    parser.add_argument("--senders", type=int, default=32)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2])
    return asyncio.run(main(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(run())
