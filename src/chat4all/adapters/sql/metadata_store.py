"""The metadata store on SQLAlchemy Core: SQLite (aiosqlite) and PostgreSQL (asyncpg).

Each public method runs one named `..._txn` function (from `accounts` and `conversations`)
inside one transaction. Driver errors are turned into chat4all errors here, so callers only
ever see `AlreadyExists`, `InvalidInput`, `Conflict` and `Unavailable`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Concatenate, ParamSpec, TypeVar
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chat4all.adapters.sql import accounts as acc
from chat4all.adapters.sql import conversations as conv
from chat4all.adapters.sql import webhooks as hooks
from chat4all.adapters.sql.engine import create_engine, run_transaction
from chat4all.domain.conversations import Conversation, Member, Role
from chat4all.domain.errors import Conflict
from chat4all.domain.users import User
from chat4all.domain.webhooks import Attempt, Delivery, DeliveryState, Webhook
from chat4all.ports.metadata import RefreshToken, WatermarkMove
from chat4all.ports.webhooks import Claim, Outcome

P = ParamSpec("P")
T = TypeVar("T")

_PRIVATE_KEY_ATTEMPTS = 3


class SqlMetadataStore:
    """`chat4all.ports.metadata.MetadataStore` and `chat4all.ports.webhooks.WebhookStore` on
    an async SQLAlchemy engine.

    The schema must exist: run `chat4all.adapters.sql.migrate.upgrade(url)` first.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @classmethod
    async def connect(cls, url: str) -> SqlMetadataStore:
        """A store on a new engine for `url`; does not create or migrate the schema."""
        return cls(create_engine(url))

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def _read(
        self,
        txn: Callable[Concatenate[AsyncConnection, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        return await self._run(False, txn, *args, **kwargs)

    async def _write(
        self,
        txn: Callable[Concatenate[AsyncConnection, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        return await self._run(True, txn, *args, **kwargs)

    async def _run(
        self,
        write: bool,
        txn: Callable[Concatenate[AsyncConnection, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        return await run_transaction(self._engine, write, txn, *args, **kwargs)

    # users

    async def create_user(self, user: User) -> None:
        await self._write(acc.create_user_txn, user)

    async def get_user(self, user_id: UUID) -> User | None:
        return await self._read(acc.get_user_txn, user_id)

    async def get_user_by_username(self, username: str) -> User | None:
        return await self._read(acc.get_user_by_username_txn, username)

    async def get_users(self, user_ids: Sequence[UUID]) -> list[User]:
        return await self._read(acc.get_users_txn, list(dict.fromkeys(user_ids)))

    # refresh tokens

    async def add_refresh_token(self, token: RefreshToken) -> None:
        await self._write(acc.add_refresh_token_txn, token)

    async def get_refresh_token(self, token_hash: str) -> RefreshToken | None:
        return await self._read(acc.get_refresh_token_txn, token_hash)

    async def rotate_refresh_token(
        self, old_token_id: UUID, new: RefreshToken, now: datetime
    ) -> bool:
        return await self._write(acc.rotate_refresh_token_txn, old_token_id, new, now)

    async def revoke_token_family(self, family_id: UUID, now: datetime) -> None:
        await self._write(acc.revoke_token_family_txn, family_id, now)

    # conversations and members

    async def create_conversation(
        self,
        conversation: Conversation,
        members: Sequence[tuple[UUID, Role]],
        private_key: str | None = None,
    ) -> tuple[Conversation, bool]:
        if private_key is None:
            await self._write(conv.create_conversation_txn, conversation, members, None)
            return await self._stored_conversation(conversation.conversation_id), True
        # Get or create: the unique key decides between concurrent creators; the loser reads
        # the winner's conversation. A retry covers a winner that disappears in between.
        for _ in range(_PRIVATE_KEY_ATTEMPTS):
            existing = await self._read(conv.get_conversation_by_private_key_txn, private_key)
            if existing is not None:
                return existing, False
            try:
                await self._write(conv.create_conversation_txn, conversation, members, private_key)
            except conv.PrivateKeyTaken:
                continue
            return await self._stored_conversation(conversation.conversation_id), True
        raise Conflict(f"the private conversation {private_key!r} keeps changing; try again")

    async def _stored_conversation(self, conversation_id: UUID) -> Conversation:
        stored = await self._read(conv.get_conversation_txn, conversation_id)
        if stored is None:  # removed between our commit and this read
            raise Conflict(f"conversation {conversation_id} was removed while being created")
        return stored

    async def get_conversation(self, conversation_id: UUID) -> Conversation | None:
        return await self._read(conv.get_conversation_txn, conversation_id)

    async def list_memberships(self, user_id: UUID) -> list[tuple[Conversation, Member]]:
        return await self._read(conv.list_memberships_txn, user_id)

    async def get_member(self, conversation_id: UUID, user_id: UUID) -> Member | None:
        return await self._read(conv.get_member_txn, conversation_id, user_id, lock=False)

    async def list_members(self, conversation_id: UUID) -> list[Member]:
        return await self._read(conv.list_members_txn, conversation_id)

    async def add_member(
        self, conversation_id: UUID, user_id: UUID, role: Role, joined_at: datetime
    ) -> Member:
        return await self._write(conv.add_member_txn, conversation_id, user_id, role, joined_at)

    async def remove_member(self, conversation_id: UUID, user_id: UUID) -> bool:
        return await self._write(conv.remove_member_txn, conversation_id, user_id)

    async def set_role(self, conversation_id: UUID, user_id: UUID, role: Role) -> bool:
        return await self._write(conv.set_role_txn, conversation_id, user_id, role)

    async def advance_watermarks(
        self,
        conversation_id: UUID,
        user_id: UUID,
        *,
        read_seq: int | None = None,
        delivered_seq: int | None = None,
    ) -> Member | None:
        return await self._write(
            conv.advance_watermarks_txn, conversation_id, user_id, read_seq, delivered_seq
        )

    async def advance_many_watermarks(self, moves: Sequence[WatermarkMove]) -> None:
        if moves:
            await self._write(conv.advance_many_watermarks_txn, moves)

    # client webhooks and their delivery queue

    async def create_webhook(self, webhook: Webhook) -> None:
        await self._write(hooks.create_webhook_txn, webhook)

    async def get_webhook(self, webhook_id: UUID) -> Webhook | None:
        return await self._read(hooks.get_webhook_txn, webhook_id)

    async def list_webhooks(self, user_id: UUID) -> list[Webhook]:
        return await self._read(hooks.list_webhooks_txn, user_id)

    async def delete_webhook(self, webhook_id: UUID) -> bool:
        return await self._write(hooks.delete_webhook_txn, webhook_id)

    async def save_secrets(self, webhook: Webhook) -> bool:
        return await self._write(hooks.save_secrets_txn, webhook)

    async def subscribers(self, user_ids: Sequence[UUID], event_type: str) -> list[Webhook]:
        if not user_ids:
            return []
        return await self._read(hooks.subscribers_txn, list(dict.fromkeys(user_ids)), event_type)

    async def enqueue_deliveries(self, deliveries: Sequence[Delivery]) -> int:
        if not deliveries:
            return 0
        return await self._write(hooks.enqueue_deliveries_txn, deliveries)

    async def claim_deliveries(
        self, now: datetime, limit: int, per_webhook: int, lease: timedelta
    ) -> list[Claim]:
        return await self._write(hooks.claim_deliveries_txn, now, limit, per_webhook, lease)

    async def finish_attempt(self, claim: Claim, outcome: Outcome) -> bool:
        return await self._write(hooks.finish_attempt_txn, claim, outcome)

    async def release_claims(self, claims: Sequence[Claim], now: datetime) -> None:
        if claims:
            await self._write(hooks.release_claims_txn, claims, now)

    async def get_delivery(self, delivery_id: UUID) -> Delivery | None:
        return await self._read(hooks.get_delivery_txn, delivery_id)

    async def list_deliveries(
        self,
        webhook_id: UUID,
        *,
        state: DeliveryState | None = None,
        before: tuple[datetime, UUID] | None = None,
        limit: int = 50,
    ) -> list[Delivery]:
        return await self._read(hooks.list_deliveries_txn, webhook_id, state, before, limit)

    async def list_attempts(self, delivery_ids: Sequence[UUID]) -> Mapping[UUID, list[Attempt]]:
        return await self._read(hooks.list_attempts_txn, list(dict.fromkeys(delivery_ids)))

    async def replay_delivery(self, delivery_id: UUID, now: datetime) -> Delivery | None:
        return await self._write(hooks.replay_delivery_txn, delivery_id, now)

    async def ping(self) -> None:
        await self._read(_ping_txn)

    async def close(self) -> None:
        await self._engine.dispose()


async def _ping_txn(conn: AsyncConnection) -> None:
    await conn.execute(text("SELECT 1"))
