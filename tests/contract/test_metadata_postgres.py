"""The metadata store contract on PostgreSQL (asyncpg), plus what only a server has: a server
that is not there, and connections that break under the store and come back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from chat4all.adapters.sql import SqlMetadataStore, upgrade
from chat4all.adapters.sql.engine import async_url
from chat4all.devcluster import free_port
from chat4all.domain.conversations import Role
from chat4all.domain.errors import Unavailable
from tests.contract.metadata_store_contract import MetadataStoreContract, make_conversation
from tests.contract.metadata_store_contract import make_user as new_user
from tests.contract.webhook_store_contract import WebhookStoreContract
from tests.databases import asyncpg_dsn, fresh_postgres_database, with_database

pytestmark = pytest.mark.postgres


@pytest.fixture
async def database() -> AsyncIterator[str]:
    async with fresh_postgres_database() as url:
        await upgrade(url)
        yield url


class TestPostgresMetadataStore(MetadataStoreContract, WebhookStoreContract):
    @pytest.fixture
    async def store(self, database: str) -> AsyncIterator[SqlMetadataStore]:
        store = await SqlMetadataStore.connect(database)
        try:
            yield store
        finally:
            await store.close()


async def _terminate_other_backends(conn: asyncpg.Connection) -> int:
    """Ends every other session on `conn`'s database, as a server restart would."""
    ended = await conn.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    return int(ended)


async def test_no_server_is_unavailable_quickly() -> None:
    url = f"postgresql+asyncpg://chat4all:chat4all@127.0.0.1:{free_port()}/chat4all"
    store = await SqlMetadataStore.connect(url)
    try:
        with pytest.raises(Unavailable):
            await asyncio.wait_for(store.ping(), 10)
    finally:
        await store.close()


async def test_plain_postgresql_url_means_asyncpg(database: str) -> None:
    plain = database.replace("postgresql+asyncpg://", "postgresql://", 1)
    assert async_url(plain) == database
    assert async_url("postgres://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert async_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    await upgrade(plain)  # already at head: nothing to do
    store = await SqlMetadataStore.connect(plain)
    try:
        await store.ping()
    finally:
        await store.close()


async def test_broken_idle_connections_are_replaced_unnoticed(database: str) -> None:
    store = await SqlMetadataStore.connect(database)
    admin = await asyncpg.connect(asyncpg_dsn(database))
    try:
        user = new_user()
        await asyncio.gather(store.create_user(user), store.ping(), store.ping())  # a few in pool
        assert await _terminate_other_backends(admin) >= 1
        # The pool pings each connection before lending it: no call sees the broken ones.
        for _ in range(3):
            assert await store.get_user(user.user_id) == user
    finally:
        await admin.close()
        await store.close()


async def test_call_cut_by_a_restart_is_unavailable_and_the_next_succeeds(database: str) -> None:
    store = await SqlMetadataStore.connect(database)
    admin = await asyncpg.connect(asyncpg_dsn(database))
    try:
        owner, other = new_user(), new_user()
        await store.create_user(owner)
        await store.create_user(other)
        conversation = make_conversation(owner.user_id)
        members = [(owner.user_id, Role.OWNER), (other.user_id, Role.MEMBER)]
        await store.create_conversation(conversation, members)
        cid = conversation.conversation_id

        # Hold the member's row lock, so the store's call waits on the server, mid-transaction.
        holder = admin.transaction()
        await holder.start()
        await admin.execute(
            "SELECT 1 FROM conversation_members WHERE conversation_id = $1 AND user_id = $2"
            " FOR UPDATE",
            cid,
            other.user_id,
        )
        call = asyncio.create_task(store.advance_watermarks(cid, other.user_id, read_seq=5))
        for _ in range(100):
            waiting = await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'"
            )
            if waiting:
                break
            await asyncio.sleep(0.05)
        assert waiting == 1
        assert await _terminate_other_backends(admin) >= 1
        with pytest.raises(Unavailable):
            await asyncio.wait_for(call, 10)
        await holder.rollback()

        before = await store.advance_watermarks(cid, other.user_id, read_seq=7)
        assert before is not None and before.last_read_seq == 0
        member = await store.get_member(cid, other.user_id)
        assert member is not None and member.last_read_seq == 7
    finally:
        await admin.close()
        await store.close()


async def test_database_that_does_not_exist_is_unavailable(database: str) -> None:
    store = await SqlMetadataStore.connect(with_database(database, "no_such_database_c4"))
    try:
        with pytest.raises(Unavailable):
            await store.ping()
    finally:
        await store.close()
