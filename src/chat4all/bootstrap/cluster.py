"""The cluster profile: a process plays the roles it is given, on the real servers.

Every process connects to the same servers (PostgreSQL, MongoDB, Kafka, Redis, etcd) and wires
the same services; its roles decide what it runs: the HTTP gateway, gRPC services, or workers.
Singleton jobs (the outbox relay, the retention sweep) run under leader election, so starting
two of them gives one active and one standby.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from chat4all.bootstrap.channels import external_channels
from chat4all.bootstrap.connect import connect_with_retry
from chat4all.bootstrap.platform import Platform, Worker, wire
from chat4all.domain.errors import InvalidInput, Unavailable
from chat4all.ports.blobs import BlobStore
from chat4all.ports.clock import Clock
from chat4all.ports.registry import Registry
from chat4all.roles import SINGLETONS, Role, ServiceRole
from chat4all.services.auth import InternalTokens
from chat4all.settings import Settings

if TYPE_CHECKING:
    from chat4all.adapters.redis import RedisRealtime
    from chat4all.adapters.sql.metadata_store import SqlMetadataStore

log = logging.getLogger(__name__)


RETENTION_SWEEP_SECONDS = 600


def instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


async def build_cluster(settings: Settings, roles: Collection[Role]) -> Platform:
    """Connect to every server (retrying while one is down at start-up), wire the platform, and
    keep only the workers this process's roles name."""
    from chat4all.adapters.clock import SystemClock
    from chat4all.adapters.etcd.registry import EtcdRegistry
    from chat4all.adapters.kafka import KafkaEventBus
    from chat4all.adapters.mongo.file_store import MongoFileStore
    from chat4all.adapters.mongo.message_store import MongoMessageStore
    from chat4all.adapters.redis.client import Keys
    from chat4all.adapters.redis.ratelimit import RedisRateLimiter

    clock = SystemClock()
    timeout = settings.startup_timeout_seconds
    ns = settings.namespace
    registry = await connect_with_retry(
        "etcd",
        settings.etcd_url,
        lambda: EtcdRegistry.connect(settings.etcd_url, clock, root=f"/{ns}"),
        timeout,
    )
    settings = await settings_from_registry(settings, registry)
    metadata_url = settings.cluster_metadata_url()
    metadata = await connect_with_retry(
        "PostgreSQL", metadata_url, lambda: _metadata(metadata_url), timeout
    )
    store = await connect_with_retry(
        "MongoDB",
        settings.mongo_url,
        lambda: MongoMessageStore.connect(
            settings.mongo_url,
            database=settings.mongo_database,
            max_pool_size=settings.mongo_max_pool_size,
        ),
        timeout,
    )
    bus = await connect_with_retry(
        "Kafka",
        settings.kafka_bootstrap_servers,
        lambda: KafkaEventBus.connect(
            settings.kafka_bootstrap_servers,
            client_id=f"{ns}-{instance_id()}",
            partitions=settings.kafka_partitions,
            replication_factor=settings.kafka_replication_factor,
            namespace=ns,
            consumer_config={
                # A worker that dies hands its partitions over within 10 s (librdkafka: 45 s).
                "session.timeout.ms": 10_000,
                "heartbeat.interval.ms": 1_000,
                # The range assignor gives partition p of every topic to the same member, so one
                # status worker applies a conversation's delivered and read events in turn.
                "partition.assignment.strategy": "range",
            },
        ),
        timeout,
    )
    file_store = await connect_with_retry(
        "MongoDB",
        settings.mongo_url,
        lambda: MongoFileStore.connect(
            settings.mongo_url, database=settings.mongo_database, create_indexes=False
        ),
        timeout,
    )
    blobs = await connect_with_retry(
        "S3", settings.s3_endpoint_url, lambda: _blobs(settings), timeout
    )
    realtime = await connect_with_retry(
        "Redis", settings.redis_url, lambda: _realtime(settings.redis_url, clock, f"{ns}:"), timeout
    )
    channels = external_channels(settings, metadata)
    platform = wire(
        settings,
        clock=clock,
        metadata=metadata,
        store=store,
        bus=bus,
        hub=realtime.hub,
        presence=realtime.presence,
        cache=realtime.cache,
        limiter=RedisRateLimiter(realtime.client, Keys(f"{ns}:")),
        file_store=file_store,
        blobs=blobs,
        webhook_store=metadata,
        directory=channels.directory,
        connectors=channels.connectors,
    )
    platform.closers.append(channels.close)
    platform.workers["retention"] = _retention_sweep(platform, clock)
    platform.workers = {
        name: _singleton(registry, clock, name, worker) if name in SINGLETONS else worker
        for name, worker in platform.workers.items()
        if name in roles
    }
    tokens = InternalTokens(settings.resolved_jwt_secret(), clock)
    served = [role for role in roles if role in GRPC_SERVICES]
    if served:
        platform.workers["grpc"] = _grpc_server(platform, registry, served, tokens, settings)
    if ServiceRole.GATEWAY in roles:
        await _use_remote_services(platform, registry, tokens, timeout)
        platform.workers["presence-sweep"] = _presence_sweep(platform, clock)
        address = f"http://{settings.advertise_host}:{settings.port}"
        registration = await registry.register(ServiceRole.GATEWAY, instance_id(), address)
        platform.closers.append(registration.close)
    platform.workers["config-watch"] = _config_watch(registry, await registry.config())
    platform.probes |= {"realtime": realtime.ping, "registry": registry.ping}
    platform.closers += [realtime.close, registry.close]
    return platform


async def settings_from_registry(settings: Settings, registry: Registry) -> Settings:
    """`settings` with the values kept in the registry under `config/<setting name>` on top:
    one place to change every process's limits (`chat4all config set max_text_length 2000`).
    They are read at start; a change is logged by the processes already running."""
    values = await registry.config()
    unknown = sorted(set(values) - set(Settings.model_fields))
    if unknown:
        log.warning("ignoring unknown settings in the registry: %s", ", ".join(unknown))
    known = {k: v for k, v in values.items() if k in Settings.model_fields}
    if not known:
        return settings
    log.info("settings from the registry: %s", ", ".join(sorted(known)))
    try:
        return Settings.model_validate({**settings.model_dump(), **known})
    except ValueError as e:
        raise InvalidInput(f"a setting in the registry is invalid: {e}") from e


def _config_watch(registry: Registry, first: dict[str, str]) -> Worker:
    async def watch() -> None:
        async for values in await registry.watch_config():
            changed = sorted(
                k for k in values.keys() | first.keys() if values.get(k) != first.get(k)
            )
            if changed:
                log.warning(
                    "settings changed in the registry: %s; restart this process to apply them",
                    ", ".join(changed),
                )
            first.clear()
            first.update(values)

    return watch


async def _realtime(url: str, clock: Clock, prefix: str) -> RedisRealtime:
    from chat4all.adapters.redis import RedisRealtime

    realtime = await RedisRealtime.connect(url, clock=clock, prefix=prefix)
    try:
        await realtime.ping()
    except Unavailable:
        await realtime.close()
        raise
    return realtime


async def _blobs(settings: Settings) -> BlobStore:
    from chat4all.adapters.s3.blob_store import S3BlobStore, S3Location

    location = S3Location(
        settings.s3_endpoint_url, settings.s3_bucket, settings.s3_access_key, settings.s3_secret_key
    )
    return await S3BlobStore.connect(location, part_size=settings.s3_part_size_bytes)


async def _metadata(url: str) -> SqlMetadataStore:
    from chat4all.adapters.sql.metadata_store import SqlMetadataStore

    store = await SqlMetadataStore.connect(url)
    try:
        await store.ping()
    except Unavailable:
        await store.close()
        raise
    return store


# What each role serves over gRPC. The event stream is served with the messages.
GRPC_SERVICES: dict[Role, tuple[str, ...]] = {
    ServiceRole.AUTH: ("auth",),
    ServiceRole.CONVERSATION: ("conversation",),
    ServiceRole.MESSAGE: ("message", "events"),
    ServiceRole.PRESENCE: ("presence",),
}


def _grpc_server(
    platform: Platform,
    registry: Registry,
    roles: list[Role],
    tokens: InternalTokens,
    settings: Settings,
) -> Worker:
    """Serve `roles` over gRPC; announce each in the registry once the port is bound (port 0
    picks a free one), for as long as it serves."""
    from chat4all.api.grpc.server import start_grpc_server

    names = [name for role in roles for name in GRPC_SERVICES[role]]

    async def serve() -> None:
        server = await start_grpc_server(
            platform, f"{settings.host}:{settings.grpc_port}", names, internal_tokens=tokens
        )
        address = f"{settings.advertise_host}:{server.port}"
        registrations = [await registry.register(role, instance_id(), address) for role in roles]
        log.info("serving %s over gRPC on %s", ", ".join(names), address)
        try:
            await server.wait()
        finally:
            for registration in registrations:
                await registration.close()
            await server.stop()

    return serve


async def _use_remote_services(
    platform: Platform, registry: Registry, tokens: InternalTokens, timeout: float
) -> None:
    """The gateway calls auth, conversations and messages over gRPC, on every registered
    instance of each (round robin), following the registry as instances come and go."""
    from chat4all.adapters.grpc import (
        CHANNEL_OPTIONS,
        RemoteAuth,
        RemoteConversations,
        RemoteMessages,
    )
    from chat4all.adapters.grpc.discovery import DiscoveredChannel

    async def channel(role: ServiceRole) -> Any:
        opened = await DiscoveredChannel.open(registry, role, CHANNEL_OPTIONS, timeout)
        platform.closers.insert(0, lambda: opened.close(None))
        return opened

    platform.auth = RemoteAuth(await channel(ServiceRole.AUTH), tokens.token)
    platform.conversations = RemoteConversations(
        await channel(ServiceRole.CONVERSATION), tokens.token
    )
    platform.messages = RemoteMessages(await channel(ServiceRole.MESSAGE), tokens.token)


def _singleton(registry: Registry, clock: Clock, name: str, worker: Worker) -> Worker:
    from chat4all.workers.leader import run_as_leader

    async def run() -> None:
        await run_as_leader(registry, name, worker, clock=clock, candidate=instance_id())

    return run


def _presence_sweep(platform: Platform, clock: Clock) -> Worker:
    """Every gateway sweeps: the store gives each expired user to one of them."""
    from chat4all.adapters.redis.presence import SESSION_TTL_SECONDS
    from chat4all.services.presence import PresenceSweeper

    sweeper = PresenceSweeper(
        platform.presence, platform.hub, platform.conversations, clock, SESSION_TTL_SECONDS / 3
    )
    return sweeper.run


def _retention_sweep(platform: Platform, clock: Clock) -> Worker:
    async def sweep() -> None:
        # MongoDB's TTL index deletes expired messages by itself; FerretDB does not, and the
        # sweep is cheap where the index already did the work. Expired uploads give their
        # space back.
        while True:
            await clock.sleep(RETENTION_SWEEP_SECONDS)
            await platform.store.delete_expired(clock.now())
            await platform.files.sweep()

    return sweep
