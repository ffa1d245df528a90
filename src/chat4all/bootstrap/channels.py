"""External channels for a profile: the channel directory on the metadata database and the
connectors found through entry points (or given, in tests), sharing one HTTP client."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from chat4all.connectors.registry import ConnectorFactory
from chat4all.ports.channels import ChannelDirectory
from chat4all.ports.connectors import Connector
from chat4all.ports.metadata import MetadataStore
from chat4all.settings import Settings


@dataclass(frozen=True)
class ExternalChannels:
    directory: ChannelDirectory
    connectors: dict[str, Connector]
    close: Callable[[], Awaitable[None]]


def external_channels(
    settings: Settings,
    metadata: MetadataStore,
    factories: Mapping[str, ConnectorFactory] | None = None,
) -> ExternalChannels:
    import httpx

    from chat4all.adapters.sql.channels import SqlChannelDirectory
    from chat4all.adapters.sql.metadata_store import SqlMetadataStore
    from chat4all.connectors.registry import build, discover

    if not isinstance(metadata, SqlMetadataStore):
        raise TypeError("the channel directory lives in the SQL metadata database")
    http = httpx.AsyncClient(timeout=settings.connector_timeout_seconds)
    connectors = build(discover() if factories is None else factories, http)
    return ExternalChannels(SqlChannelDirectory(metadata.engine), connectors, http.aclose)
