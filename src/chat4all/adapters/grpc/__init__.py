"""Remote services: gRPC clients that implement the application services' interfaces
(`chat4all.services.interfaces`), for a process that calls services running elsewhere (the
gateway, in the cluster profile). They raise the same domain errors as the services in process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import grpc

from chat4all.adapters.grpc.auth import RemoteAuth
from chat4all.adapters.grpc.base import DEFAULT_TIMEOUT
from chat4all.adapters.grpc.conversations import RemoteConversations
from chat4all.adapters.grpc.errors import RemoteServiceError
from chat4all.adapters.grpc.events import RemoteEvents
from chat4all.adapters.grpc.messages import RemoteMessages
from chat4all.adapters.grpc.presence import RemotePresence
from chat4all.services.interfaces import Services

__all__ = [
    "RemoteAuth",
    "RemoteConversations",
    "RemoteEvents",
    "RemoteMessages",
    "RemotePresence",
    "RemoteServiceError",
    "RemoteServices",
    "connect",
    "open_channel",
]

# Keep idle connections alive through proxies, and notice a dead peer within a minute.
CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_receive_message_length", 4 << 20),
]


def open_channel(
    target: str, credentials: grpc.ChannelCredentials | None = None
) -> grpc.aio.Channel:
    """A channel to `target` ("host:port", or any gRPC target such as "dns:///name:port")."""
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
    return grpc.aio.secure_channel(target, credentials, options=CHANNEL_OPTIONS)


@dataclass(frozen=True)
class RemoteServices(Services):
    """Every service on one channel (one server that serves them all)."""

    channel: grpc.aio.Channel

    async def close(self) -> None:
        await self.channel.close(None)


def connect(
    target: str,
    internal_token: Callable[[], str],
    *,
    credentials: grpc.ChannelCredentials | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> RemoteServices:
    """Clients of the services served at `target`; each call shows `internal_token()`.

    Services in separate processes get a client each, on their own channels:
    `RemoteMessages(open_channel("message:50051"), tokens.token)`.
    """
    channel = open_channel(target, credentials)
    return RemoteServices(
        auth=RemoteAuth(channel, internal_token, timeout),
        conversations=RemoteConversations(channel, internal_token, timeout),
        messages=RemoteMessages(channel, internal_token, timeout),
        presence=RemotePresence(channel, internal_token, timeout),
        events=RemoteEvents(channel, internal_token, timeout),
        channel=channel,
    )
