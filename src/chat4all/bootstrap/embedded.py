"""The embedded profile: one process, SQLite files under the data folder, in-process hub."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING

from chat4all.bootstrap.channels import external_channels
from chat4all.bootstrap.platform import Platform, auth_policy, wire
from chat4all.connectors.registry import ConnectorFactory
from chat4all.ports.metadata import MetadataStore
from chat4all.services.auth import AuthService
from chat4all.settings import Settings

if TYPE_CHECKING:
    from chat4all.adapters.sql.metadata_store import SqlMetadataStore


async def build_embedded(
    settings: Settings, connectors: Mapping[str, ConnectorFactory] | None = None
) -> Platform:
    """One process, SQLite files under the data folder, in-process hub and cache. The
    connectors are the installed plugins unless given (tests register theirs)."""
    from chat4all.adapters.clock import SystemClock
    from chat4all.adapters.localfs.blob_store import LocalBlobStore
    from chat4all.adapters.memory.ratelimit import InProcessRateLimiter
    from chat4all.adapters.memory.realtime import InProcessCache, InProcessHub, InProcessPresence
    from chat4all.adapters.sqlite.event_log import SQLiteEventLog
    from chat4all.adapters.sqlite.file_store import SQLiteFileStore
    from chat4all.adapters.sqlite.message_store import SQLiteMessageStore

    clock = SystemClock()
    metadata = await _embedded_metadata(settings)
    event_log = await SQLiteEventLog.open(settings.data_dir / "events.db", settings.bus_partitions)
    message_store = await SQLiteMessageStore.open(settings.data_dir / "messages.db")
    channels = external_channels(settings, metadata, connectors)
    platform = wire(
        settings,
        clock=clock,
        metadata=metadata,
        store=message_store,
        bus=event_log,
        hub=InProcessHub(),
        presence=InProcessPresence(),
        cache=InProcessCache(clock),
        limiter=InProcessRateLimiter(),
        file_store=await SQLiteFileStore.open(settings.data_dir / "files.db"),
        blobs=LocalBlobStore(settings.data_dir / "files"),
        webhook_store=metadata,
        directory=channels.directory,
        connectors=channels.connectors,
    )
    platform.closers.append(channels.close)
    retention = timedelta(hours=settings.bus_retention_hours)

    async def retention_sweep() -> None:
        # What Kafka's retention and MongoDB's TTL index do by themselves: the embedded log
        # drops consumed events past retention, the store drops messages past ttl_expire_at.
        # Expired uploads give their space back.
        while True:
            await clock.sleep(600)
            await event_log.prune(clock.now() - retention)
            await message_store.delete_expired(clock.now())
            await platform.files.sweep()

    platform.workers["retention"] = retention_sweep
    return platform


async def build_embedded_accounts(settings: Settings) -> tuple[AuthService, MetadataStore]:
    """Only what account administration needs (the CLI): it leaves the message store and the
    event log, which a running server is writing, alone."""
    from chat4all.adapters.clock import SystemClock
    from chat4all.adapters.memory.realtime import InProcessCache

    clock = SystemClock()
    metadata = await _embedded_metadata(settings)
    return AuthService(metadata, InProcessCache(clock), clock, auth_policy(settings)), metadata


async def _embedded_metadata(settings: Settings) -> SqlMetadataStore:
    """The metadata store in the data folder, migrated to the latest schema."""
    from chat4all.adapters.sql.metadata_store import SqlMetadataStore
    from chat4all.adapters.sql.migrate import upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_metadata_url()
    await upgrade(url)
    return await SqlMetadataStore.connect(url)
