"""Transactions on conversations and their members."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy import BigInteger, ColumnElement, bindparam, case, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from chat4all.adapters.sql.errors import is_foreign_key_violation, violates
from chat4all.adapters.sql.schema import conversation_members, conversations
from chat4all.domain.conversations import Conversation, ConversationType, Member, Role
from chat4all.domain.errors import AlreadyExists, InvalidInput
from chat4all.ports.metadata import WatermarkMove


class PrivateKeyTaken(Exception):
    """Another conversation already holds the private key: the caller returns that one."""


async def create_conversation_txn(
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
            raise PrivateKeyTaken(private_key) from e
        if violates(e, conversations, "pk_conversations"):
            raise AlreadyExists(
                f"conversation {conversation.conversation_id} already exists"
            ) from e
        if is_foreign_key_violation(e):
            raise InvalidInput(f"user {conversation.created_by} does not exist") from e
        raise
    for user_id, role in dict(members).items():
        await add_member_txn(
            conn, conversation.conversation_id, user_id, role, conversation.created_at
        )


async def get_conversation_txn(conn: AsyncConnection, conversation_id: UUID) -> Conversation | None:
    query = select(conversations).where(conversations.c.conversation_id == conversation_id)
    row = (await conn.execute(query)).mappings().first()
    return _conversation(row) if row is not None else None


async def get_conversation_by_private_key_txn(
    conn: AsyncConnection, private_key: str
) -> Conversation | None:
    query = select(conversations).where(conversations.c.private_key == private_key)
    row = (await conn.execute(query)).mappings().first()
    return _conversation(row) if row is not None else None


async def list_memberships_txn(
    conn: AsyncConnection, user_id: UUID
) -> list[tuple[Conversation, Member]]:
    m = conversation_members.c
    query = (
        select(conversations, m.user_id, m.role, m.joined_at, m.last_read_seq, m.last_delivered_seq)
        .join(
            conversation_members,
            conversation_members.c.conversation_id == conversations.c.conversation_id,
        )
        .where(conversation_members.c.user_id == user_id, conversations.c.is_active.is_(True))
        .order_by(conversations.c.updated_at.desc(), conversations.c.conversation_id)
    )
    return [(_conversation(row), _member(row)) for row in (await conn.execute(query)).mappings()]


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


async def get_member_txn(
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


async def list_members_txn(conn: AsyncConnection, conversation_id: UUID) -> list[Member]:
    query = (
        select(conversation_members)
        .where(conversation_members.c.conversation_id == conversation_id)
        .order_by(conversation_members.c.joined_at, conversation_members.c.user_id)
    )
    return [_member(row) for row in (await conn.execute(query)).mappings()]


async def add_member_txn(
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
    member = await get_member_txn(conn, conversation_id, user_id, lock=False)
    assert member is not None  # inserted just above, in this transaction
    return member


async def remove_member_txn(conn: AsyncConnection, conversation_id: UUID, user_id: UUID) -> bool:
    result = await conn.execute(
        conversation_members.delete().where(
            conversation_members.c.conversation_id == conversation_id,
            conversation_members.c.user_id == user_id,
        )
    )
    return result.rowcount > 0


async def set_role_txn(
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


async def advance_watermarks_txn(
    conn: AsyncConnection,
    conversation_id: UUID,
    user_id: UUID,
    read_seq: int | None,
    delivered_seq: int | None,
) -> Member | None:
    before = await get_member_txn(conn, conversation_id, user_id, lock=True)
    if before is not None:
        move = WatermarkMove(conversation_id, user_id, read_seq, delivered_seq)
        await advance_many_watermarks_txn(conn, [move])
    return before


def _move_forward(column: ColumnElement[int], bound: str) -> ColumnElement[int]:
    """`max(column, :bound)`, leaving the column alone when the bound is NULL."""
    value = bindparam(bound, type_=BigInteger())
    return case((column < value, value), else_=column)


_m = conversation_members.c
# One statement with bound parameters, so SQLAlchemy compiles it once and executemany runs it.
_ADVANCE_WATERMARKS = (
    conversation_members.update()
    .where(_m.conversation_id == bindparam("b_conversation"), _m.user_id == bindparam("b_user"))
    .values(
        last_read_seq=_move_forward(_m.last_read_seq, "b_read"),
        last_delivered_seq=_move_forward(_m.last_delivered_seq, "b_delivered"),
    )
)


async def advance_many_watermarks_txn(
    conn: AsyncConnection, moves: Sequence[WatermarkMove]
) -> None:
    # Rows are locked in one global order (conversation, user): two batches that share rows
    # then wait for each other on PostgreSQL instead of deadlocking.
    ordered = sorted(moves, key=lambda m: (m.conversation_id, m.user_id))
    await conn.execute(
        _ADVANCE_WATERMARKS,
        [
            {
                "b_conversation": m.conversation_id,
                "b_user": m.user_id,
                "b_read": m.read_seq,
                "b_delivered": m.delivered_seq,
            }
            for m in ordered
        ],
    )


def _member(row: RowMapping) -> Member:
    return Member(
        user_id=row["user_id"],
        role=Role(row["role"]),
        joined_at=row["joined_at"],
        last_read_seq=int(row["last_read_seq"]),
        last_delivered_seq=int(row["last_delivered_seq"]),
    )
