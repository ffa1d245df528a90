"""The presence service over gRPC (implements `Presence`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from uuid import UUID

import grpc

from chat4all.adapters.grpc import codec
from chat4all.adapters.grpc.base import DEFAULT_TIMEOUT, RemoteClient
from chat4all.ports.realtime import PresenceState
from chat4all.v1 import presence_pb2 as pb
from chat4all.v1 import presence_pb2_grpc


class RemotePresence(RemoteClient):
    service = "presence"

    def __init__(
        self,
        channel: grpc.aio.Channel,
        internal_token: Callable[[], str],
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(channel, internal_token, timeout)
        self._stub = presence_pb2_grpc.PresenceServiceStub(channel)

    async def states(self, user_ids: Sequence[UUID]) -> list[PresenceState]:
        request = pb.GetPresenceRequest(user_ids=[str(u) for u in user_ids])
        response = await self._call(self._stub.GetPresence, request)
        return [codec.presence(s) for s in response.states]
