"""The gRPC server: any subset of the services, with reflection and the health service.

`start_grpc_server(platform, "0.0.0.0:50051")` serves all of them from one process;
`services=("message",)` serves one, so each can run as its own process in the cluster profile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from chat4all.api.grpc.auth import AuthServicer
from chat4all.api.grpc.conversations import ConversationServicer
from chat4all.api.grpc.events import EventServicer
from chat4all.api.grpc.identity import Callers
from chat4all.api.grpc.messages import MessageServicer
from chat4all.api.grpc.presence import PresenceServicer
from chat4all.bootstrap import Platform
from chat4all.services.auth import InternalTokens
from chat4all.services.events import EventService
from chat4all.services.interfaces import Services
from chat4all.services.presence import PresenceService
from chat4all.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    conversation_pb2,
    conversation_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    message_pb2,
    message_pb2_grpc,
    presence_pb2,
    presence_pb2_grpc,
)

ALL_SERVICES = ("auth", "conversation", "message", "presence", "events")
MAX_MESSAGE_BYTES = 4 << 20


@dataclass(frozen=True)
class _Service:
    full_name: str
    add: Callable[[Services, Callers, grpc.aio.Server], None]


_SERVICES: dict[str, _Service] = {
    "auth": _Service(
        auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name,
        lambda s, c, server: auth_pb2_grpc.add_AuthServiceServicer_to_server(
            AuthServicer(s.auth, c), server
        ),
    ),
    "conversation": _Service(
        conversation_pb2.DESCRIPTOR.services_by_name["ConversationService"].full_name,
        lambda s, c, server: conversation_pb2_grpc.add_ConversationServiceServicer_to_server(
            ConversationServicer(s.conversations, c), server
        ),
    ),
    "message": _Service(
        message_pb2.DESCRIPTOR.services_by_name["MessageService"].full_name,
        lambda s, c, server: message_pb2_grpc.add_MessageServiceServicer_to_server(
            MessageServicer(s.messages, c), server
        ),
    ),
    "presence": _Service(
        presence_pb2.DESCRIPTOR.services_by_name["PresenceService"].full_name,
        lambda s, c, server: presence_pb2_grpc.add_PresenceServiceServicer_to_server(
            PresenceServicer(s.presence, c), server
        ),
    ),
    "events": _Service(
        events_pb2.DESCRIPTOR.services_by_name["EventService"].full_name,
        lambda s, c, server: events_pb2_grpc.add_EventServiceServicer_to_server(
            EventServicer(s.events, c), server
        ),
    ),
}


def local_services(platform: Platform) -> Services:
    """The platform's services, in process."""
    return Services(
        auth=platform.auth,
        conversations=platform.conversations,
        messages=platform.messages,
        presence=PresenceService(platform.presence),
        events=EventService(
            platform.stream_session,
            platform.messages,
            platform.conversations,
            platform.hub,
            typing_seconds=platform.typing_seconds,
        ),
    )


@dataclass
class GrpcServer:
    """A started server: `port` is the one bound (useful with port 0)."""

    server: grpc.aio.Server
    port: int
    services: tuple[str, ...]
    _health: Any

    async def stop(self, grace: float | None = 5.0) -> None:
        """Report NOT_SERVING, then end calls (streams included) after `grace` seconds."""
        await self._health.enter_graceful_shutdown()
        await self.server.stop(grace)

    async def wait(self) -> None:
        await self.server.wait_for_termination()


async def start_grpc_server(
    platform: Platform,
    address: str,
    services: Iterable[str] = ALL_SERVICES,
    *,
    internal_tokens: InternalTokens | None = None,
    credentials: grpc.ServerCredentials | None = None,
) -> GrpcServer:
    """Serve `services` of `platform` on `address` ("host:port"; port 0 picks a free one).

    Callers authenticate with `authorization: Bearer <access token>` metadata. With
    `internal_tokens`, another Chat4All process may also call on a user's behalf (an internal
    token, and the user in `chat4all-actor` metadata): give it to a server the gateway calls.
    Without `credentials` the port is plaintext (TLS terminated in front of it).
    """
    names = tuple(dict.fromkeys(services))
    unknown = [n for n in names if n not in _SERVICES]
    if unknown or not names:
        raise ValueError(f"unknown services {unknown}; choose from {ALL_SERVICES}")
    local = local_services(platform)
    callers = Callers(local.auth, internal_tokens)
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
    )
    for name in names:
        _SERVICES[name].add(local, callers, server)
    # The aio health servicer is not in grpc-stubs; it has the sync one's methods, async.
    health_servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    full_names = [_SERVICES[n].full_name for n in names]
    reflection.enable_server_reflection(
        [*full_names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    if credentials is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, credentials)
    await server.start()
    serving = health_pb2.HealthCheckResponse.SERVING
    for full_name in ["", *full_names]:
        await health_servicer.set(full_name, serving)
    return GrpcServer(server, port, names, health_servicer)
