"""chat4all.v1.AuthService."""

from __future__ import annotations

from chat4all.api.grpc import codec
from chat4all.api.grpc.errors import Context, unary
from chat4all.api.grpc.identity import Callers
from chat4all.services.interfaces import Auth, TokenPair
from chat4all.v1 import auth_pb2, auth_pb2_grpc


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, auth: Auth, callers: Callers) -> None:
        self._auth = auth
        self._callers = callers

    @unary
    async def Register(self, request: auth_pb2.RegisterRequest, context: Context) -> auth_pb2.User:
        user = await self._auth.register(request.username, request.email, request.password)
        return codec.user(user, with_email=True)

    @unary
    async def Token(
        self, request: auth_pb2.TokenRequest, context: Context
    ) -> auth_pb2.TokenResponse:
        return _tokens(await self._auth.login(request.username, request.password))

    @unary
    async def Refresh(
        self, request: auth_pb2.RefreshRequest, context: Context
    ) -> auth_pb2.TokenResponse:
        return _tokens(await self._auth.refresh(request.refresh_token))

    @unary
    async def Logout(
        self, request: auth_pb2.LogoutRequest, context: Context
    ) -> auth_pb2.LogoutResponse:
        principal = await self._callers.principal(context)
        refresh = request.refresh_token if request.HasField("refresh_token") else None
        await self._auth.logout(principal, refresh or None)
        return auth_pb2.LogoutResponse()

    @unary
    async def GetMe(self, request: auth_pb2.GetMeRequest, context: Context) -> auth_pb2.User:
        user_id = await self._callers.user_id(context)
        return codec.user(await self._auth.get_user(user_id), with_email=True)

    @unary
    async def GetUserByUsername(
        self, request: auth_pb2.GetUserByUsernameRequest, context: Context
    ) -> auth_pb2.User:
        await self._callers.anyone(context)
        user_id = await self._auth.user_id_of(request.username)
        return auth_pb2.User(user_id=str(user_id), username=request.username)

    @unary
    async def IntrospectToken(
        self, request: auth_pb2.IntrospectTokenRequest, context: Context
    ) -> auth_pb2.TokenInfo:
        principal = await self._auth.authenticate(request.access_token)
        info = auth_pb2.TokenInfo(user_id=str(principal.user_id), token_id=principal.token_id)
        info.expires_at.FromSeconds(int(principal.expires_at))
        return info


def _tokens(pair: TokenPair) -> auth_pb2.TokenResponse:
    return auth_pb2.TokenResponse(
        access_token=pair.access_token,
        token_type="bearer",
        expires_in=pair.expires_in,
        refresh_token=pair.refresh_token,
    )
