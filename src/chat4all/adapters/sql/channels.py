"""The channel directory on the metadata database: `channel_configs`, `user_channels`,
`channel_messages`, `dead_letters`. Each public method runs one named `_..._txn` function."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar
from uuid import UUID, uuid4

from sqlalchemy import select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chat4all.adapters.sql import accounts as acc
from chat4all.adapters.sql import conversations as conv
from chat4all.adapters.sql.engine import run_transaction
from chat4all.adapters.sql.errors import violates
from chat4all.adapters.sql.schema import channel_configs, channel_messages, dead_letters
from chat4all.adapters.sql.schema import user_channels as links
from chat4all.domain.conversations import Conversation, ConversationType, Role
from chat4all.domain.errors import AlreadyExists
from chat4all.domain.users import User
from chat4all.ports.channels import (
    Contact,
    DeadLetter,
    LinkedChannel,
    NewContact,
    SentOnChannel,
)
from chat4all.ports.connectors import ChannelAccount

P = ParamSpec("P")
T = TypeVar("T")
# A password hash no password matches: contacts never log in.
NO_PASSWORD = "!contact"


class SqlChannelDirectory:
    """`chat4all.ports.channels.ChannelDirectory` on the metadata store's engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def _run(
        self,
        write: bool,
        txn: Callable[Concatenate[AsyncConnection, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        return await run_transaction(self._engine, write, txn, *args, **kwargs)

    async def add_account(self, account: ChannelAccount) -> None:
        await self._run(True, _add_account_txn, account)

    async def get_account(self, channel_type: str, account_id: str) -> ChannelAccount | None:
        found = await self._run(False, _accounts_txn, channel_type, account_id)
        return found[0] if found else None

    async def list_accounts(self, channel_type: str | None = None) -> list[ChannelAccount]:
        return await self._run(False, _accounts_txn, channel_type, None)

    async def link(self, link: LinkedChannel, now: datetime) -> LinkedChannel:
        await self._run(True, _link_txn, link, now)
        return link

    async def links_of(self, user_ids: Sequence[UUID]) -> dict[UUID, list[LinkedChannel]]:
        return await self._run(False, _links_of_txn, list(dict.fromkeys(user_ids)))

    async def contact(self, new: NewContact) -> Contact:
        found = await self._run(False, _find_contact_txn, new)
        if found is not None:
            return found
        try:
            return await self._run(True, _create_contact_txn, new)
        except AlreadyExists:
            # Another worker created the same contact a moment ago: use theirs.
            again = await self._run(False, _find_contact_txn, new)
            if again is None:
                raise
            return again

    async def record_sent(self, sent: SentOnChannel) -> None:
        await self._run(True, _record_sent_txn, sent)

    async def sent_for(
        self, message_id: UUID, recipient_id: UUID, channel_type: str
    ) -> SentOnChannel | None:
        c = channel_messages.c
        rows = await self._run(
            False,
            _sent_where_txn,
            (c.message_id == message_id)
            & (c.recipient_id == recipient_id)
            & (c.channel_type == channel_type),
        )
        return rows[0] if rows else None

    async def sent_by_platform_ids(
        self, channel_type: str, account_id: str, platform_message_ids: Sequence[str]
    ) -> list[SentOnChannel]:
        c = channel_messages.c
        return await self._run(
            False,
            _sent_where_txn,
            (c.channel_type == channel_type)
            & (c.account_id == account_id)
            & c.platform_message_id.in_(list(platform_message_ids)),
        )

    async def sent_up_to(
        self, channel_type: str, account_id: str, contact_id: str, until: datetime
    ) -> list[SentOnChannel]:
        c = channel_messages.c
        return await self._run(
            False,
            _sent_where_txn,
            (c.channel_type == channel_type)
            & (c.account_id == account_id)
            & (c.contact_id == contact_id)
            & (c.sent_at <= until),
        )

    async def add_dead_letter(self, letter: DeadLetter) -> None:
        await self._run(True, _add_dead_letter_txn, letter)

    async def dead_letters(self, limit: int, include_replayed: bool = False) -> list[DeadLetter]:
        return await self._run(False, _dead_letters_txn, limit, include_replayed, None)

    async def mark_replayed(self, letter_id: UUID, now: datetime) -> DeadLetter | None:
        return await self._run(True, _mark_replayed_txn, letter_id, now)


# accounts


async def _add_account_txn(conn: AsyncConnection, account: ChannelAccount) -> None:
    try:
        await conn.execute(
            channel_configs.insert().values(
                id=uuid4(),
                channel_type=account.channel_type,
                account_id=account.account_id,
                config=dict(account.config),
                is_enabled=account.enabled,
            )
        )
    except IntegrityError as e:
        if violates(e, channel_configs, "uq_channel_configs_account"):
            raise AlreadyExists(
                f"{account.channel_type} account {account.account_id!r} already exists"
            ) from e
        raise


async def _accounts_txn(
    conn: AsyncConnection, channel_type: str | None, account_id: str | None
) -> list[ChannelAccount]:
    c = channel_configs.c
    query = select(channel_configs).order_by(c.channel_type, c.account_id)
    if channel_type is not None:
        query = query.where(c.channel_type == channel_type)
    if account_id is not None:
        query = query.where(c.account_id == account_id)
    return [
        ChannelAccount(r["account_id"], r["channel_type"], r["config"], r["is_enabled"])
        for r in (await conn.execute(query)).mappings()
    ]


# identities


async def _link_txn(conn: AsyncConnection, link: LinkedChannel, now: datetime) -> None:
    c = links.c
    await conn.execute(
        links.delete().where((c.user_id == link.user_id) & (c.channel_type == link.channel_type))
    )
    try:
        await conn.execute(
            links.insert().values(
                id=uuid4(),
                user_id=link.user_id,
                channel_type=link.channel_type,
                channel_user_id=link.channel_user_id,
                account_id=link.account_id,
                priority=link.priority,
                channel_metadata=link.metadata or {},
                created_at=now,
            )
        )
    except IntegrityError as e:
        if violates(e, links, "uq_user_channels_identity"):
            raise AlreadyExists(
                f"{link.channel_type} identity {link.channel_user_id!r} is someone else's"
            ) from e
        raise


async def _links_of_txn(conn: AsyncConnection, user_ids: list[UUID]) -> dict[UUID, list[Any]]:
    found: dict[UUID, list[Any]] = {}
    for start in range(0, len(user_ids), 500):
        query = select(links).where(links.c.user_id.in_(user_ids[start : start + 500]))
        for r in (await conn.execute(query)).mappings():
            found.setdefault(r["user_id"], []).append(_link(r))
    return found


def _link(r: RowMapping) -> LinkedChannel:
    return LinkedChannel(
        r["user_id"],
        r["channel_type"],
        r["channel_user_id"],
        r["account_id"],
        r["priority"],
        r["channel_metadata"],
    )


# contacts


async def _find_contact_txn(conn: AsyncConnection, new: NewContact) -> Contact | None:
    c = links.c
    query = select(links).where(
        (c.channel_type == new.channel_type)
        & (c.account_id == new.account_id)
        & (c.channel_user_id == new.channel_user_id)
    )
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        return None
    return Contact(row["user_id"], UUID(row["channel_metadata"]["conversation_id"]), False)


async def _create_contact_txn(conn: AsyncConnection, new: NewContact) -> Contact:
    user_id, conversation_id = uuid4(), uuid4()
    await acc.create_user_txn(
        conn,
        User(
            user_id=user_id,
            username=f"{new.channel_type}.{user_id.hex}",
            email=f"{user_id.hex}@contacts.invalid",
            password_hash=NO_PASSWORD,
            created_at=new.now,
            updated_at=new.now,
            metadata={
                "contact": True,
                "display_name": new.display_name,
                "channel_type": new.channel_type,
                "account_id": new.account_id,
            },
        ),
    )
    members = [(user_id, Role.OWNER), *((u, Role.MEMBER) for u in new.inbox_user_ids)]
    private = new.conversation_type is ConversationType.PRIVATE
    await conv.create_conversation_txn(
        conn,
        Conversation(
            conversation_id,
            new.conversation_type,
            user_id,
            new.now,
            new.now,
            {"channel_type": new.channel_type, "account_id": new.account_id},
        ),
        members,
        ":".join(sorted(str(u) for u, _ in members)) if private else None,
    )
    await _link_txn(
        conn,
        LinkedChannel(
            user_id,
            new.channel_type,
            new.channel_user_id,
            new.account_id,
            None,
            {"conversation_id": str(conversation_id), "display_name": new.display_name},
        ),
        new.now,
    )
    return Contact(user_id, conversation_id, True)


# what went out


async def _record_sent_txn(conn: AsyncConnection, sent: SentOnChannel) -> None:
    c = channel_messages.c
    existing = await conn.execute(
        select(c.message_id).where(
            (c.message_id == sent.message_id)
            & (c.recipient_id == sent.recipient_id)
            & (c.channel_type == sent.channel_type)
        )
    )
    if existing.first() is None:
        await conn.execute(channel_messages.insert().values(**sent.__dict__))


async def _sent_where_txn(conn: AsyncConnection, condition: Any) -> list[SentOnChannel]:
    query = select(channel_messages).where(condition).order_by(channel_messages.c.sent_at)
    return [SentOnChannel(**dict(r)) for r in (await conn.execute(query)).mappings()]


# dead letters


async def _add_dead_letter_txn(conn: AsyncConnection, letter: DeadLetter) -> None:
    await conn.execute(dead_letters.insert().values(**letter.__dict__))


async def _dead_letters_txn(
    conn: AsyncConnection, limit: int, include_replayed: bool, letter_id: UUID | None
) -> list[DeadLetter]:
    c = dead_letters.c
    query = select(dead_letters).order_by(c.created_at.desc()).limit(limit)
    if not include_replayed:
        query = query.where(c.replayed_at.is_(None))
    if letter_id is not None:
        query = query.where(c.id == letter_id)
    return [DeadLetter(**dict(r)) for r in (await conn.execute(query)).mappings()]


async def _mark_replayed_txn(
    conn: AsyncConnection, letter_id: UUID, now: datetime
) -> DeadLetter | None:
    await conn.execute(
        update(dead_letters).where(dead_letters.c.id == letter_id).values(replayed_at=now)
    )
    found = await _dead_letters_txn(conn, 1, True, letter_id)
    return found[0] if found else None
