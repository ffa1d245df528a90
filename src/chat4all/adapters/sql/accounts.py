"""Transactions on users and refresh tokens (the seed's `users` and `access_tokens`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from chat4all.adapters.sql.errors import is_foreign_key_violation, violates
from chat4all.adapters.sql.schema import access_tokens, users
from chat4all.domain.errors import AlreadyExists, InvalidInput
from chat4all.domain.users import User, UserStatus
from chat4all.ports.metadata import RefreshToken

# Bound parameters per statement stay well below SQLite's and asyncpg's limits.
_IN_CHUNK = 500


async def create_user_txn(conn: AsyncConnection, user: User) -> None:
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
        if violates(e, users, "uq_users_username_lower") or violates(e, users, "uq_users_username"):
            raise AlreadyExists(f"username {user.username!r} is taken") from e
        if violates(e, users, "uq_users_email"):
            raise AlreadyExists(f"email {user.email!r} is taken") from e
        if violates(e, users, "pk_users"):
            raise AlreadyExists(f"user {user.user_id} already exists") from e
        raise


async def get_user_txn(conn: AsyncConnection, user_id: UUID) -> User | None:
    return await _user_where(conn, users.c.user_id == user_id)


async def get_user_by_username_txn(conn: AsyncConnection, username: str) -> User | None:
    """The user of that name, whatever its case (the unique index on lower(username)).

    Stored usernames are ASCII. A name that is not must match none of them on either database,
    though PostgreSQL's lower() (and Python's) would fold some letters into ASCII: the Kelvin
    sign U+212A becomes "k". SQLite's lower() folds only A-Z.
    """
    if not username.isascii():
        return None
    return await _user_where(conn, func.lower(users.c.username) == username.lower())


async def _user_where(conn: AsyncConnection, where: ColumnElement[bool]) -> User | None:
    row = (await conn.execute(select(users).where(where))).mappings().first()
    return _user(row) if row is not None else None


async def get_users_txn(conn: AsyncConnection, user_ids: list[UUID]) -> list[User]:
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


async def add_refresh_token_txn(conn: AsyncConnection, token: RefreshToken) -> None:
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


async def get_refresh_token_txn(conn: AsyncConnection, token_hash: str) -> RefreshToken | None:
    query = select(access_tokens).where(access_tokens.c.token_hash == token_hash)
    row = (await conn.execute(query)).mappings().first()
    return _token(row) if row is not None else None


async def rotate_refresh_token_txn(
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
    await add_refresh_token_txn(conn, new)
    return True


async def revoke_token_family_txn(conn: AsyncConnection, family_id: UUID, now: datetime) -> None:
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
