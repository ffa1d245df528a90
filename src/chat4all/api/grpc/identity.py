"""Who is calling: `authorization: Bearer <access token>` metadata (the REST API's tokens).

Another Chat4All process calling on a user's behalf (the gateway, in the cluster profile)
shows an internal token instead and names the user in `chat4all-actor` metadata. A user's
access token never allows naming an actor.
"""

from __future__ import annotations

from uuid import UUID

from chat4all.api.grpc.errors import Context
from chat4all.domain.errors import InvalidInput, Unauthenticated
from chat4all.services.auth import InternalTokens
from chat4all.services.interfaces import Auth, Principal

AUTHORIZATION = "authorization"
ACTOR = "chat4all-actor"


class Callers:
    def __init__(self, auth: Auth, internal: InternalTokens | None) -> None:
        self._auth = auth
        self._internal = internal

    async def user_id(self, context: Context) -> UUID:
        """The user the call acts for."""
        token, actor = _credentials(context)
        if actor is None:
            return (await self._auth.authenticate(token)).user_id
        self._check_internal(token)
        try:
            return UUID(actor)
        except ValueError as e:
            raise InvalidInput(f"`{ACTOR}` metadata must be a user id") from e

    async def principal(self, context: Context) -> Principal:
        """The caller's own access token, checked (what a logout revokes)."""
        token, actor = _credentials(context)
        if actor is not None:
            raise InvalidInput(f"this call takes the user's own access token, not `{ACTOR}`")
        return await self._auth.authenticate(token)

    async def anyone(self, context: Context) -> None:
        """Any signed-in user, or another Chat4All process."""
        token, actor = _credentials(context)
        if actor is None and self._internal is not None:
            try:
                self._internal.check(token)
                return
            except Unauthenticated:
                pass
        await self.user_id(context)

    def _check_internal(self, token: str) -> None:
        if self._internal is None:
            raise Unauthenticated(f"this server does not take `{ACTOR}`; send a user's token")
        self._internal.check(token)


def _credentials(context: Context) -> tuple[str, str | None]:
    token: str | None = None
    actor: str | None = None
    for key, value in context.invocation_metadata() or ():
        if key == AUTHORIZATION and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() != "bearer":
                token = None
        elif key == ACTOR and isinstance(value, str):
            actor = value
    if not token:
        raise Unauthenticated(f"send an access token: `{AUTHORIZATION}: Bearer <token>` metadata")
    return token.strip(), actor
