"""The channel directory's contract, run on every database it lives in."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from chat4all.adapters.sql import SqlMetadataStore
from chat4all.adapters.sql.channels import SqlChannelDirectory
from chat4all.domain.conversations import ConversationType
from chat4all.domain.errors import AlreadyExists
from chat4all.ports.channels import DeadLetter, LinkedChannel, NewContact, SentOnChannel
from chat4all.ports.connectors import ChannelAccount
from tests.contract.metadata_store_contract import make_user

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class ChannelDirectoryContract:
    @pytest.fixture
    def directory(self, store: SqlMetadataStore) -> SqlChannelDirectory:
        return SqlChannelDirectory(store.engine)

    async def test_several_accounts_per_channel(self, directory):
        await directory.add_account(ChannelAccount("one", "whatsapp", {"phone_number_id": "1"}))
        await directory.add_account(ChannelAccount("two", "whatsapp", {"phone_number_id": "2"}))
        await directory.add_account(ChannelAccount("one", "telegram", {"bot_token": "t"}))
        with pytest.raises(AlreadyExists, match="one"):
            await directory.add_account(ChannelAccount("one", "whatsapp", {}))
        assert [a.account_id for a in await directory.list_accounts("whatsapp")] == ["one", "two"]
        found = await directory.get_account("whatsapp", "two")
        assert found is not None and found.config == {"phone_number_id": "2"}
        assert await directory.get_account("messenger", "one") is None

    async def test_links_replace_and_identities_are_unique_per_account(self, store, directory):
        ana, bo = make_user(), make_user()
        for u in (ana, bo):
            await store.create_user(u)
        await directory.link(LinkedChannel(ana.user_id, "whatsapp", "1555", None, 1), T0)
        await directory.link(LinkedChannel(ana.user_id, "whatsapp", "1666", None, 2), T0)
        await directory.link(LinkedChannel(ana.user_id, "telegram", "42"), T0)
        links = (await directory.links_of([ana.user_id, bo.user_id]))[ana.user_id]
        assert sorted((k.channel_type, k.channel_user_id, k.priority) for k in links) == [
            ("telegram", "42", None),
            ("whatsapp", "1666", 2),
        ]
        await directory.link(LinkedChannel(bo.user_id, "messenger", "P1", "page-a"), T0)
        await directory.link(LinkedChannel(ana.user_id, "messenger", "P1", "page-b"), T0)
        with pytest.raises(AlreadyExists):
            await directory.link(LinkedChannel(ana.user_id, "messenger", "P1", "page-a"), T0)

    async def test_a_contact_is_created_once_with_its_conversation(self, store, directory):
        inbox = make_user()
        await store.create_user(inbox)
        new = NewContact(
            "telegram", "bot", "99", "Bo", (inbox.user_id,), ConversationType.PRIVATE, T0
        )
        first, second = await asyncio.gather(directory.contact(new), directory.contact(new))
        assert first.user_id == second.user_id
        assert first.conversation_id == second.conversation_id
        assert [first.created, second.created].count(True) <= 1
        members = {m.user_id for m in await store.list_members(first.conversation_id)}
        assert members == {first.user_id, inbox.user_id}
        other = await directory.contact(
            NewContact(
                "telegram", "other-bot", "99", None, (inbox.user_id,), ConversationType.PRIVATE, T0
            )
        )
        assert other.user_id != first.user_id  # ids are scoped by account

    async def test_sent_messages_by_platform_id_and_watermark(self, directory):
        mid, cid, rid = uuid4(), uuid4(), uuid4()
        sent = [
            SentOnChannel(
                "messenger",
                "page",
                f"m{i}",
                uuid4() if i else mid,
                cid,
                rid,
                "P1",
                T0 + timedelta(seconds=i),
            )
            for i in range(3)
        ]
        for s in sent:
            await directory.record_sent(s)
        await directory.record_sent(sent[0])  # again: nothing changes
        assert await directory.sent_for(mid, rid, "messenger") == sent[0]
        assert await directory.sent_for(mid, rid, "whatsapp") is None
        by_id = await directory.sent_by_platform_ids("messenger", "page", ["m2", "nope"])
        assert by_id == [sent[2]]
        up_to = await directory.sent_up_to("messenger", "page", "P1", T0 + timedelta(seconds=1))
        assert up_to == sent[:2]

    async def test_dead_letters_list_and_replay(self, directory):
        letters = [
            DeadLetter(
                uuid4(),
                "whatsapp",
                "a",
                uuid4(),
                uuid4(),
                f"r{i}",
                {"n": i},
                T0 + timedelta(seconds=i),
            )
            for i in range(3)
        ]
        for letter in letters:
            await directory.add_dead_letter(letter)
        assert [d.reason for d in await directory.dead_letters(10)] == ["r2", "r1", "r0"]
        replayed = await directory.mark_replayed(letters[1].id, T0 + timedelta(minutes=1))
        assert replayed is not None and replayed.job == {"n": 1} and replayed.replayed_at
        assert [d.reason for d in await directory.dead_letters(10)] == ["r2", "r0"]
        assert len(await directory.dead_letters(10, include_replayed=True)) == 3
        assert await directory.mark_replayed(uuid4(), T0) is None
