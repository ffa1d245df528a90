"""What every remote service client shares: credentials, deadlines, error mapping."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar
from uuid import UUID

import grpc

from chat4all.adapters.grpc.errors import domain_error

AUTHORIZATION = "authorization"
ACTOR = "chat4all-actor"
DEFAULT_TIMEOUT = 10.0

Q = TypeVar("Q")
R = TypeVar("R")
Metadata = tuple[tuple[str, str], ...]


class RemoteClient:
    """Calls a service on a user's behalf: an internal token (from `internal_token`, the
    composition root's `InternalTokens.token`) and the user in `chat4all-actor` metadata."""

    service = "remote"

    def __init__(
        self,
        channel: grpc.aio.Channel,
        internal_token: Callable[[], str],
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._channel = channel
        self._internal_token = internal_token
        self._timeout = timeout

    def _metadata(self, actor: UUID | None = None, bearer: str | None = None) -> Metadata:
        token = bearer if bearer is not None else self._internal_token()
        if actor is None:
            return ((AUTHORIZATION, f"Bearer {token}"),)
        return ((AUTHORIZATION, f"Bearer {token}"), (ACTOR, str(actor)))

    async def _call(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable[Q, R],
        request: Q,
        actor: UUID | None = None,
        *,
        bearer: str | None = None,
    ) -> R:
        try:
            return await method(
                request, metadata=self._metadata(actor, bearer), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as e:
            raise domain_error(e, self.service) from e
