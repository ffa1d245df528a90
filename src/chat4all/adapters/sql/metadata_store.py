"""The metadata store on SQLAlchemy Core: SQLite (aiosqlite) and PostgreSQL (asyncpg).

Each public method runs one named `_..._txn` function inside one transaction. Driver errors are
turned into chat4all errors here, so callers only ever see `AlreadyExists`, `InvalidInput` and
`Unavailable`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar
from uuid import UUID, uuid4

from sqlalchemy import BigInteger, ColumnElement, case, literal, select, text
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chat4all.adapters.sql.engine import create_engine, transaction
from chat4all.adapters.sql.errors import is_foreign_key_violation, translate, violates
from chat4all.adapters.sql.schema import access_tokens, conversation_members, conversations, users
from chat4all.domain.conversations import Conversation, ConversationType, Member, Role
from chat4all.domain.errors import AlreadyExists, Conflict, InvalidInput, Unavailable
from chat4all.domain.users import User, UserStatus
from chat4all.ports.metadata import RefreshToken

P = ParamSpec("P")
T = TypeVar("T")

# Bound parameters per statement stay well below SQLite's and asyncpg's limits.
_IN_CHUNK = 500
_PRIVATE_KEY_ATTEMPTS = 3


class _PrivateKeyTaken(Exception):
    """Another conversation already holds the private key: the caller returns that one."""


class SqlMetadataStore:
    """`chat4all.ports.metadata.MetadataStore` on an async SQLAlchemy engine.

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
        try:
            async with transaction(self._engine, write=write) as conn:
                return await txn(conn, *args, **kwargs)
        except SQLAlchemyError as e:
            raise translate(e) from e
        except OSError as e:  # a driver that lets a refused or dropped connection through
            raise Unavailable(f"the metadata database is unavailable: {e}") from e

    # users

    async def create_user(self, user: User) -> None:
        await self._write(_create_user_txn, user)

    async def get_user(self, user_id: UUID) -> User | None:
        return await self._read(_get_user_txn, users.c.user_id == user_id)

    async def get_user_by_username(self, username: str) -> User | None:
        return await self._read(_get_user_txn, users.c.username == username)

    async def get_users(self, user_ids: Sequence[UUID]) -> list[User]:
        return await self._read(_get_users_txn, list(dict.fromkeys(user_ids)))

    # refresh tokens

    async def add_refresh_token(self, token: RefreshToken) -> None:
        await self._write(_add_refresh_token_txn, token)

    async def get_refresh_token(self, token_hash: str) -> RefreshToken | None:
        return await self._read(_get_refresh_token_txn, token_hash)

    async def rotate_refresh_token(
        self, old_token_id: UUID, new: RefreshToken, now: datetime
    ) -> bool:
        return await self._write(_rotate_refresh_token_txn, old_token_id, new, now)

    async def revoke_token_family(self, family_id: UUID, now: datetime) -> None:
        await self._write(_revoke_token_family_txn, family_id, now)

    # conversations and members

    async def create_conversation(
        self,
        conversation: Conversation,
        members: Sequence[tuple[UUID, Role]],
        private_key: str | None = None,
    ) -> tuple[Conversation, bool]:
        if private_key is None:
            await self._write(_create_conversation_txn, conversation, members, None)
            return await self._stored_conversation(conversation.conversation_id), True
        # Get or create: the unique key decides between concurrent creators; the loser reads
        # the winner's conversation. A retry covers a winner that disappears in between.
        for _ in range(_PRIVATE_KEY_ATTEMPTS):
            existing = await self._read(_get_conversation_by_private_key_txn, private_key)
            if existing is not None:
                return existing, False
            try:
                await self._write(_create_conversation_txn, conversation, members, private_key)
            except _PrivateKeyTaken:
                continue
            return await self._stored_conversation(conversation.conversation_id), True
        raise Conflict(f"the private conversation {private_key!r} keeps changing; try again")

    async def _stored_conversation(self, conversation_id: UUID) -> Conversation:
        stored = await self._read(_get_conversation_txn, conversation_id)
        if stored is None:  # removed between our commit and this read
            raise Conflict(f"conversation {conversation_id} was removed while being created")
        return stored

    async def get_conversation(self, conversation_id: UUID) -> Conversation | None:
        return await self._read(_get_conversation_txn, conversation_id)

    async def list_conversations(self, user_id: UUID) -> list[Conversation]:
        return await self._read(_list_conversations_txn, user_id)

    async def get_member(self, conversation_id: UUID, user_id: UUID) -> Member | None:
        return await self._read(_get_member_txn, conversation_id, user_id, lock=False)

    async def list_members(self, conversation_id: UUID) -> list[Member]:
        return await self._read(_list_members_txn, conversation_id)

    async def add_member(
        self, conversation_id: UUID, user_id: UUID, role: Role, joined_at: datetime
    ) -> Member:
        return await self._write(_add_member_txn, conversation_id, user_id, role, joined_at)

    async def remove_member(self, conversation_id: UUID, user_id: UUID) -> bool:
        return await self._write(_remove_member_txn, conversation_id, user_id)

    async def set_role(self, conversation_id: UUID, user_id: UUID, role: Role) -> bool:
        return await self._write(_set_role_txn, conversation_id, user_id, role)

    async def advance_watermarks(
        self,
        conversation_id: UUID,
        user_id: UUID,
        *,
        read_seq: int | None = None,
        delivered_seq: int | None = None,
    ) -> Member | None:
        return await self._write(
            _advance_watermarks_txn, conversation_id, user_id, read_seq, delivered_seq
        )

    async def ping(self) -> None:
        await self._read(_ping_txn)

    async def close(self) -> None:
        await self._engine.dispose()


# transactions: users


async def _create_user_txn(conn: AsyncConnection, user: User) -> None:
    try:
        await conn.execute(
            users.insert().values(
                user_id=user.user_id,
                username=user.username,
                email=user.email,
                password_hash=user.password_hash,
                created_at=user.created_at,
                updated_at=user.updated_at,
                status=user.status.value,
                metadata=user.metadata,
            )
        )
    except IntegrityError as e:
        if violates(e, users, "uq_users_username"):
            raise AlreadyExists(f"username {user.username!r} is taken") from e
        if violates(e, users, "uq_users_email"):
            raise AlreadyExists(f"email {user.email!r} is taken") from e
        if violates(e, users, "pk_users"):
            raise AlreadyExists(f"user {user.user_id} already exists") from e
        raise


async def _get_user_txn(conn: AsyncConnection, where: ColumnElement[bool]) -> User | None:
    row = (await conn.execute(select(users).where(where))).mappings().first()
    return _user(row) if row is not None else None


async def _get_users_txn(conn: AsyncConnection, user_ids: list[UUID]) -> list[User]:
    found: list[User] = []
    for start in range(0, len(user_ids), _IN_CHUNK):
        chunk = user_ids[start : start + _IN_CHUNK]
        result = await conn.execute(select(users).where(users.c.user_id.in_(chunk)))
        found.extend(_user(row) for row in result.mappings())
    return found


def _user(row: RowMapping) -> User:
    return User(
        user_id=row["user_id"],
        username=row["username"],
        email=row["email"],
        password_hash=row["password_hash"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        status=UserStatus(row["status"]),
        metadata=dict(row["metadata"] or {}),
    )


# transactions: refresh tokens


async def _add_refresh_token_txn(conn: AsyncConnection, token: RefreshToken) -> None:
    try:
        await conn.execute(access_tokens.insert().values(**_token_values(token)))
    except IntegrityError as e:
        if violates(e, access_tokens, "uq_access_tokens_token_hash"):
            raise AlreadyExists("a refresh token with this hash already exists") from e
        if violates(e, access_tokens, "pk_access_tokens"):
            raise AlreadyExists(f"refresh token {token.token_id} already exists") from e
        if is_foreign_key_violation(e):
            raise InvalidInput(f"user {token.user_id} does not exist") from e
        raise


async def _get_refresh_token_txn(conn: AsyncConnection, token_hash: str) -> RefreshToken | None:
    query = select(access_tokens).where(access_tokens.c.token_hash == token_hash)
    row = (await conn.execute(query)).mappings().first()
    return _token(row) if row is not None else None


async def _rotate_refresh_token_txn(
    conn: AsyncConnection, old_token_id: UUID, new: RefreshToken, now: datetime
) -> bool:
    # The conditional UPDATE is the lock: of two rotations of one token, exactly one matches.
    revoked = await conn.execute(
        access_tokens.update()
        .where(access_tokens.c.token_id == old_token_id, access_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now, last_used_at=now)
    )
    if revoked.rowcount != 1:
        return False
    await _add_refresh_token_txn(conn, new)
    return True


async def _revoke_token_family_txn(conn: AsyncConnection, family_id: UUID, now: datetime) -> None:
    await conn.execute(
        access_tokens.update()
        .where(access_tokens.c.family_id == family_id, access_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def _token_values(token: RefreshToken) -> dict[str, Any]:
    return {
        "token_id": token.token_id,
        "user_id": token.user_id,
        "token_hash": token.token_hash,
        "family_id": token.family_id,
        "expires_at": token.expires_at,
        "created_at": token.created_at,
        "revoked_at": token.revoked_at,
    }


def _token(row: RowMapping) -> RefreshToken:
    return RefreshToken(
        token_id=row["token_id"],
        user_id=row["user_id"],
        token_hash=row["token_hash"],
        family_id=row["family_id"],
        expires_at=row["expires_at"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


# transactions: conversations


async def _create_conversation_txn(
    conn: AsyncConnection,
    conversation: Conversation,
    members: Sequence[tuple[UUID, Role]],
    private_key: str | None,
) -> None:
    try:
        await conn.execute(
            conversations.insert().values(
                conversation_id=conversation.conversation_id,
                type=conversation.type.value,
                created_by=conversation.created_by,
                created_at=conversation.created_at,
                updated_at=conversation.updated_at,
                metadata=conversation.metadata,
                is_active=conversation.is_active,
                private_key=private_key,
            )
        )
    except IntegrityError as e:
        if violates(e, conversations, "uq_conversations_private_key"):
            raise _PrivateKeyTaken(private_key) from e
        if violates(e, conversations, "pk_conversations"):
            raise AlreadyExists(
                f"conversation {conversation.conversation_id} already exists"
            ) from e
        if is_foreign_key_violation(e):
            raise InvalidInput(f"user {conversation.created_by} does not exist") from e
        raise
    for user_id, role in dict(members).items():
        await _add_member_txn(
            conn, conversation.conversation_id, user_id, role, conversation.created_at
        )


async def _get_conversation_txn(
    conn: AsyncConnection, conversation_id: UUID
) -> Conversation | None:
    query = select(conversations).where(conversations.c.conversation_id == conversation_id)
    row = (await conn.execute(query)).mappings().first()
    return _conversation(row) if row is not None else None


async def _get_conversation_by_private_key_txn(
    conn: AsyncConnection, private_key: str
) -> Conversation | None:
    query = select(conversations).where(conversations.c.private_key == private_key)
    row = (await conn.execute(query)).mappings().first()
    return _conversation(row) if row is not None else None


async def _list_conversations_txn(conn: AsyncConnection, user_id: UUID) -> list[Conversation]:
    query = (
        select(conversations)
        .join(
            conversation_members,
            conversation_members.c.conversation_id == conversations.c.conversation_id,
        )
        .where(conversation_members.c.user_id == user_id, conversations.c.is_active.is_(True))
        .order_by(conversations.c.updated_at.desc(), conversations.c.conversation_id)
    )
    return [_conversation(row) for row in (await conn.execute(query)).mappings()]


def _conversation(row: RowMapping) -> Conversation:
    return Conversation(
        conversation_id=row["conversation_id"],
        type=ConversationType(row["type"]),
        created_by=row["created_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        metadata=dict(row["metadata"] or {}),
        is_active=bool(row["is_active"]),
    )


# transactions: members


async def _get_member_txn(
    conn: AsyncConnection, conversation_id: UUID, user_id: UUID, *, lock: bool
) -> Member | None:
    query = select(conversation_members).where(
        conversation_members.c.conversation_id == conversation_id,
        conversation_members.c.user_id == user_id,
    )
    if lock:
        query = query.with_for_update()  # a row lock on PostgreSQL; SQLite locked at BEGIN
    row = (await conn.execute(query)).mappings().first()
    return _member(row) if row is not None else None


async def _list_members_txn(conn: AsyncConnection, conversation_id: UUID) -> list[Member]:
    query = (
        select(conversation_members)
        .where(conversation_members.c.conversation_id == conversation_id)
        .order_by(conversation_members.c.joined_at, conversation_members.c.user_id)
    )
    return [_member(row) for row in (await conn.execute(query)).mappings()]


async def _add_member_txn(
    conn: AsyncConnection, conversation_id: UUID, user_id: UUID, role: Role, joined_at: datetime
) -> Member:
    try:
        await conn.execute(
            conversation_members.insert().values(
                id=uuid4(),
                conversation_id=conversation_id,
                user_id=user_id,
                role=role.value,
                joined_at=joined_at,
            )
        )
    except IntegrityError as e:
        if violates(e, conversation_members, "uq_conversation_members_conversation_id_user_id"):
            raise AlreadyExists(
                f"user {user_id} is already a member of conversation {conversation_id}"
            ) from e
        if is_foreign_key_violation(e):
            raise InvalidInput(
                f"conversation {conversation_id} or user {user_id} does not exist"
            ) from e
        raise
    member = await _get_member_txn(conn, conversation_id, user_id, lock=False)
    assert member is not None  # inserted just above, in this transaction
    return member


async def _remove_member_txn(conn: AsyncConnection, conversation_id: UUID, user_id: UUID) -> bool:
    result = await conn.execute(
        conversation_members.delete().where(
            conversation_members.c.conversation_id == conversation_id,
            conversation_members.c.user_id == user_id,
        )
    )
    return result.rowcount > 0


async def _set_role_txn(
    conn: AsyncConnection, conversation_id: UUID, user_id: UUID, role: Role
) -> bool:
    result = await conn.execute(
        conversation_members.update()
        .where(
            conversation_members.c.conversation_id == conversation_id,
            conversation_members.c.user_id == user_id,
        )
        .values(role=role.value)
    )
    return result.rowcount > 0


async def _advance_watermarks_txn(
    conn: AsyncConnection,
    conversation_id: UUID,
    user_id: UUID,
    read_seq: int | None,
    delivered_seq: int | None,
) -> Member | None:
    before = await _get_member_txn(conn, conversation_id, user_id, lock=True)
    if before is None:
        return None
    columns = conversation_members.c
    values: dict[str, ColumnElement[int]] = {}
    if read_seq is not None:
        values["last_read_seq"] = _at_least(columns.last_read_seq, read_seq)
    if delivered_seq is not None:
        values["last_delivered_seq"] = _at_least(columns.last_delivered_seq, delivered_seq)
    if values:
        await conn.execute(
            conversation_members.update()
            .where(columns.conversation_id == conversation_id, columns.user_id == user_id)
            .values(**values)
        )
    return before


def _at_least(column: ColumnElement[int], value: int) -> ColumnElement[int]:
    """`max(column, value)` in SQL that SQLite and PostgreSQL both speak."""
    bound = literal(value, BigInteger())
    return case((column < bound, bound), else_=column)


def _member(row: RowMapping) -> Member:
    return Member(
        user_id=row["user_id"],
        role=Role(row["role"]),
        joined_at=row["joined_at"],
        last_read_seq=int(row["last_read_seq"]),
        last_delivered_seq=int(row["last_delivered_seq"]),
    )


async def _ping_txn(conn: AsyncConnection) -> None:
    await conn.execute(text("SELECT 1"))
