"""Servers restarting under a running cluster: Kafka mid-burst loses nothing; PostgreSQL and
Redis down make requests fail cleanly (503 problem+json, WebSocket 1013) and recover without
restarting Chat4All. The cluster runs on servers of its own here, so that stopping them
disturbs no other test."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from websockets.exceptions import ConnectionClosed

from chat4all.devcluster import DevCluster, free_port
from tests.cluster.conftest import cluster_env
from tests.cluster.private_servers import PrivateKafka, PrivatePostgres, PrivateRedis
from tests.integration.harness import User, register
from tests.servers import unique_name

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.kafka,
    pytest.mark.mongo,
    pytest.mark.etcd,
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.xdist_group("cluster-restarts"),
    pytest.mark.asyncio(loop_scope="module"),
]


def two_free_ports() -> int:
    while True:
        port = free_port()
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue


class Servers:
    def __init__(self, tmp: Any) -> None:
        self.postgres = PrivatePostgres(free_port())
        self.redis = PrivateRedis(free_port())
        self.kafka = PrivateKafka(two_free_ports(), tmp / "kafka")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def servers(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Servers]:
    own = Servers(tmp_path_factory.mktemp("servers"))
    try:
        await asyncio.gather(
            asyncio.to_thread(own.postgres.start),
            asyncio.to_thread(own.redis.start),
            asyncio.to_thread(own.kafka.start),
        )
        yield own
    finally:
        for stop in (own.kafka.stop, own.redis.stop, own.postgres.remove):
            with contextlib.suppress(Exception):  # already stopped by a failed test
                await asyncio.to_thread(stop)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(
    servers: Servers, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[DevCluster]:
    env = cluster_env(unique_name("c4r"), servers.postgres.url)
    env |= {
        "CHAT4ALL_KAFKA_BOOTSTRAP_SERVERS": servers.kafka.url,
        "CHAT4ALL_REDIS_URL": servers.redis.url,
    }
    local = DevCluster(
        tmp_path_factory.mktemp("cluster"),
        env=env,
        gateway_ports=(free_port(),),
        replicas=1,
        nginx_port=None,
    )
    try:
        await asyncio.to_thread(local.start)
        yield local
    finally:
        await asyncio.to_thread(local.stop)


@pytest_asyncio.fixture(loop_scope="module")
async def gateway(cluster: DevCluster) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=cluster.gateway_urls[0], timeout=30) as client:
        yield client


async def until_ok(user: User, path: str, seconds: float = 30) -> httpx.Response:
    for _ in range(int(seconds * 5)):
        r = await user.get(path)
        if r.status_code == 200:
            return r
        assert r.status_code == 503, r.text
        await asyncio.sleep(0.2)
    raise AssertionError(f"{path} still answers {r.status_code}: {r.text}")


async def test_a_kafka_restart_mid_burst_loses_nothing(
    servers: Servers, cluster: DevCluster, gateway: httpx.AsyncClient
) -> None:
    alice, bob = await register(gateway), await register(gateway)
    conversation = await alice.private_with(bob)
    async with bob.stream(cluster.gateway_urls[0]) as stream:
        sending = asyncio.gather(*(alice.send(conversation, f"m{i}") for i in range(200)))
        await stream.messages(1, timeout=30)  # the pipeline is flowing
        await asyncio.to_thread(servers.kafka.stop)
        await asyncio.sleep(2)  # sends still succeed: they go to the store's outbox
        await asyncio.to_thread(servers.kafka.start)
        sent = await sending
        received = await stream.messages(199, timeout=120)
    assert len(sent) == 200
    seqs = sorted(m["sequence_number"] for m in received)
    assert seqs == list(range(2, 201))


async def test_postgresql_down_means_503_and_recovery_without_a_restart(
    servers: Servers, gateway: httpx.AsyncClient
) -> None:
    alice = await register(gateway)
    await asyncio.to_thread(servers.postgres.stop)
    try:
        r = await alice.get("/v1/conversations")
        assert r.status_code == 503, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["detail"]
    finally:
        await asyncio.to_thread(servers.postgres.start)
    await until_ok(alice, "/v1/conversations")


async def test_redis_down_closes_streams_cleanly_and_recovers(
    servers: Servers, cluster: DevCluster, gateway: httpx.AsyncClient
) -> None:
    alice, bob = await register(gateway), await register(gateway)
    conversation = await alice.private_with(bob)
    await asyncio.to_thread(servers.redis.stop)
    try:
        with pytest.raises(ConnectionClosed) as closed:
            async with bob.stream(cluster.gateway_urls[0]) as stream:
                await stream.next_frame(10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        # REST needs Redis only for caches: it answers, or says 503 - never a 500
        for path in ("/v1/users/me", "/v1/conversations"):
            r = await bob.get(path)
            assert r.status_code in (200, 503), (path, r.status_code, r.text)
            if r.status_code == 503:
                assert r.headers["content-type"].startswith("application/problem+json")
    finally:
        await asyncio.to_thread(servers.redis.start)
    for _ in range(50):  # the gateway reconnects by itself
        try:
            async with bob.stream(cluster.gateway_urls[0]) as stream:
                await alice.send(conversation, "after the restart")
                [message] = await stream.messages(1, timeout=10)
                assert message["payload"]["text"] == "after the restart"
                return
        except ConnectionClosed:
            await asyncio.sleep(0.2)
    raise AssertionError("the stream did not recover after Redis came back")
