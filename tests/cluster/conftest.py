"""A whole cluster per test module: gateways and workers as processes on the real servers, in a
namespace of their own (topics, groups, keys, databases), so tests can share the servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import pytest_asyncio

from chat4all.devcluster import DevCluster, free_port
from tests.servers import server_url, unique_name

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.kafka, pytest.mark.mongo]


def cluster_env(namespace: str, database_url: str) -> dict[str, str]:
    return {
        "CHAT4ALL_NAMESPACE": namespace,
        "CHAT4ALL_METADATA_URL": database_url,
        "CHAT4ALL_MONGO_URL": server_url("mongo"),
        "CHAT4ALL_MONGO_DATABASE": namespace,
        "CHAT4ALL_KAFKA_BOOTSTRAP_SERVERS": server_url("kafka"),
        "CHAT4ALL_KAFKA_PARTITIONS": "4",
        "CHAT4ALL_REDIS_URL": server_url("redis"),
        "CHAT4ALL_ETCD_URL": server_url("etcd"),
        "CHAT4ALL_JWT_SECRET": "cluster-test-secret-" + "x" * 32,
        "CHAT4ALL_PASSWORD_HASH_TIME_COST": "1",
        "CHAT4ALL_SEND_RATE_PER_SECOND": "0",  # bursts from one user are the point here
        "CHAT4ALL_PASSWORD_HASH_MEMORY_KIB": "1024",
        "CHAT4ALL_STARTUP_TIMEOUT_SECONDS": "30",
        "CHAT4ALL_MONGO_MAX_POOL_SIZE": "4",  # many processes share one FerretDB
        # Webhook receivers are local; retries in fractions of a second.
        "CHAT4ALL_WEBHOOK_ALLOW_PRIVATE_URLS": "true",
        "CHAT4ALL_WEBHOOK_RETRY_SCHEDULE_SECONDS": "[0.2, 0.2, 0.2]",
    }


async def create_database(admin_url: str, name: str) -> str:
    """A fresh PostgreSQL database; its SQLAlchemy URL."""
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DevCluster]:
    """One cluster for the module's tests (each test makes its own users): starting fourteen
    processes costs more than most tests."""
    namespace = unique_name("c4a")
    database = await create_database(server_url("postgres"), namespace)
    local = DevCluster(
        tmp_path_factory.mktemp("cluster"),
        env=cluster_env(namespace, database),
        gateway_ports=(free_port(), free_port()),
        replicas=2,
        nginx_port=None,
    )
    try:
        await asyncio.to_thread(local.start)
        yield local
    finally:
        await asyncio.to_thread(local.stop)


@pytest_asyncio.fixture(loop_scope="module")
async def gateways(cluster: DevCluster) -> AsyncIterator[list[httpx.AsyncClient]]:
    clients = [httpx.AsyncClient(base_url=url, timeout=20) for url in cluster.gateway_urls]
    yield clients
    for client in clients:
        await client.aclose()
