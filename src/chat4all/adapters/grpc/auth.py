"""The auth service over gRPC (implements `chat4all.services.interfaces.Auth`)."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import grpc

from chat4all.adapters.grpc import codec
from chat4all.adapters.grpc.base import DEFAULT_TIMEOUT, RemoteClient
from chat4all.domain.errors import Unauthenticated
from chat4all.domain.users import User
from chat4all.services.interfaces import Principal, TokenPair
from chat4all.v1 import auth_pb2 as pb
from chat4all.v1 import auth_pb2_grpc


class RemoteAuth(RemoteClient):
    """Each `authenticate` is a call (`IntrospectToken`); a gateway that must not pay it on
    every request verifies tokens with a local `AuthService` on the shared secret and cache."""

    service = "auth"

    def __init__(
        self,
        channel: grpc.aio.Channel,
        internal_token: Callable[[], str],
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(channel, internal_token, timeout)
        self._stub = auth_pb2_grpc.AuthServiceStub(channel)

    async def register(self, username: str, email: str, password: str) -> User:
        request = pb.RegisterRequest(username=username, email=email, password=password)
        return codec.user(await self._call(self._stub.Register, request))

    async def login(self, username: str, password: str) -> TokenPair:
        request = pb.TokenRequest(username=username, password=password)
        return _pair(await self._call(self._stub.Token, request))

    async def refresh(self, refresh_token: str) -> TokenPair:
        request = pb.RefreshRequest(refresh_token=refresh_token)
        return _pair(await self._call(self._stub.Refresh, request))

    async def logout(self, principal: Principal, refresh_token: str | None) -> None:
        if not principal.access_token:
            raise Unauthenticated("logging out remotely needs the access token itself")
        request = pb.LogoutRequest(refresh_token=refresh_token)
        await self._call(self._stub.Logout, request, bearer=principal.access_token)

    async def authenticate(self, access_token: str) -> Principal:
        request = pb.IntrospectTokenRequest(access_token=access_token)
        info = await self._call(self._stub.IntrospectToken, request)
        return Principal(
            UUID(info.user_id), info.token_id, float(info.expires_at.seconds), access_token
        )

    async def get_user(self, user_id: UUID) -> User:
        return codec.user(await self._call(self._stub.GetMe, pb.GetMeRequest(), user_id))

    async def user_id_of(self, username: str) -> UUID:
        request = pb.GetUserByUsernameRequest(username=username)
        return UUID((await self._call(self._stub.GetUserByUsername, request)).user_id)


def _pair(response: pb.TokenResponse) -> TokenPair:
    return TokenPair(response.access_token, response.refresh_token, response.expires_in)
