"""chat4all.v1.PresenceService."""

from __future__ import annotations

from chat4all.api.grpc import codec
from chat4all.api.grpc.errors import Context, unary
from chat4all.api.grpc.identity import Callers
from chat4all.services.interfaces import Presence
from chat4all.v1 import presence_pb2 as pb
from chat4all.v1 import presence_pb2_grpc


class PresenceServicer(presence_pb2_grpc.PresenceServiceServicer):
    def __init__(self, presence: Presence, callers: Callers) -> None:
        self._presence = presence
        self._callers = callers

    @unary
    async def GetPresence(
        self, request: pb.GetPresenceRequest, context: Context
    ) -> pb.GetPresenceResponse:
        await self._callers.anyone(context)
        states = await self._presence.states([codec.uuid(u, "user_ids") for u in request.user_ids])
        return pb.GetPresenceResponse(states=[codec.presence(s) for s in states])
