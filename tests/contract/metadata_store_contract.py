"""The contract every `MetadataStore` adapter passes.

Subclass `MetadataStoreContract` and provide a `store` fixture that yields a ready, empty-or-not
store (the tests make unique names, so a shared database works too).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import pytest

from chat4all.domain.conversations import Conversation, ConversationType, Member, Role
from chat4all.domain.errors import AlreadyExists, InvalidInput
from chat4all.domain.users import User, UserStatus
from chat4all.ports.metadata import MetadataStore, RefreshToken, WatermarkMove

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def _name(prefix: str = "user") -> str:
    return f"{prefix}_{uuid4().hex[:12]}"


def make_user(
    username: str | None = None,
    email: str | None = None,
    status: UserStatus = UserStatus.ACTIVE,
    metadata: dict[str, Any] | None = None,
    at: datetime = T0,
) -> User:
    username = username or _name()
    return User(
        user_id=uuid4(),
        username=username,
        email=email or f"{username}@example.com",
        password_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
        created_at=at,
        updated_at=at,
        status=status,
        metadata=metadata or {},
    )


def make_conversation(
    creator: UUID, kind: ConversationType = ConversationType.GROUP, at: datetime = T0
) -> Conversation:
    return Conversation(
        conversation_id=uuid4(),
        type=kind,
        created_by=creator,
        created_at=at,
        updated_at=at,
        metadata={"title": "team"} if kind is ConversationType.GROUP else {},
    )


def make_token(user_id: UUID, family_id: UUID | None = None) -> RefreshToken:
    return RefreshToken(
        token_id=uuid4(),
        user_id=user_id,
        token_hash=uuid4().hex + uuid4().hex,
        family_id=family_id or uuid4(),
        expires_at=T0 + timedelta(days=30),
        created_at=T0,
    )


def private_key(a: UUID, b: UUID) -> str:
    return ":".join(sorted((str(a), str(b))))


def assert_utc(value: datetime) -> None:
    assert value.tzinfo is not None
    assert value.utcoffset() == timedelta(0)


class MetadataStoreContract:
    """The tests. Subclasses provide the `store` fixture."""

    async def _users(self, store: MetadataStore, n: int) -> list[User]:
        made = [make_user() for _ in range(n)]
        for user in made:
            await store.create_user(user)
        return made

    async def _group(
        self, store: MetadataStore, n_members: int = 3
    ) -> tuple[Conversation, list[User]]:
        people = await self._users(store, n_members)
        conversation = make_conversation(people[0].user_id)
        members = [(people[0].user_id, Role.OWNER), *((u.user_id, Role.MEMBER) for u in people[1:])]
        stored, created = await store.create_conversation(conversation, members)
        assert created
        return stored, people

    # users

    async def test_create_and_get_user(self, store: MetadataStore) -> None:
        user = make_user(metadata={"locale": "pt-BR"})
        await store.create_user(user)
        assert await store.get_user(user.user_id) == user
        assert await store.get_user_by_username(user.username) == user

    async def test_get_unknown_user_is_none(self, store: MetadataStore) -> None:
        assert await store.get_user(uuid4()) is None
        assert await store.get_user_by_username(_name("nobody")) is None

    async def test_user_status_round_trips(self, store: MetadataStore) -> None:
        user = make_user(status=UserStatus.SUSPENDED)
        await store.create_user(user)
        stored = await store.get_user(user.user_id)
        assert stored is not None and stored.status is UserStatus.SUSPENDED

    async def test_username_is_unique(self, store: MetadataStore) -> None:
        first = make_user()
        await store.create_user(first)
        with pytest.raises(AlreadyExists) as caught:
            await store.create_user(make_user(username=first.username, email=f"{_name()}@x.org"))
        assert f"username '{first.username}' is taken" in caught.value.detail

    async def test_username_is_unique_regardless_of_case(self, store: MetadataStore) -> None:
        first = make_user(username=_name("Mixed_Case"))
        await store.create_user(first)
        twin = make_user(username=first.username.swapcase(), email=f"{_name()}@x.org")
        with pytest.raises(AlreadyExists) as caught:
            await store.create_user(twin)
        assert f"username '{twin.username}' is taken" in caught.value.detail
        assert await store.get_user(twin.user_id) is None

    async def test_username_lookup_ignores_case_and_keeps_the_stored_spelling(
        self, store: MetadataStore
    ) -> None:
        user = make_user(username=_name("Kim"))
        await store.create_user(user)
        for spelling in (user.username, user.username.upper(), user.username.lower()):
            assert await store.get_user_by_username(spelling) == user
        # PostgreSQL's lower() folds the Kelvin sign (U+212A) into "k"; SQLite's does not.
        # Usernames are ASCII, so a name that is not matches nobody on either.
        assert await store.get_user_by_username("\u212a" + user.username[1:]) is None

    async def test_email_is_unique(self, store: MetadataStore) -> None:
        first = make_user()
        await store.create_user(first)
        with pytest.raises(AlreadyExists) as caught:
            await store.create_user(make_user(email=first.email))
        assert "email" in caught.value.detail
        assert first.email in caught.value.detail

    async def test_failed_create_stores_nothing(self, store: MetadataStore) -> None:
        first = make_user()
        await store.create_user(first)
        clash = make_user(email=first.email)
        with pytest.raises(AlreadyExists):
            await store.create_user(clash)
        assert await store.get_user(clash.user_id) is None
        assert await store.get_user_by_username(clash.username) is None

    async def test_metadata_round_trips_exactly(self, store: MetadataStore) -> None:
        metadata = {
            "text": 'ação, 日本語, emoji 🎉, quote " and backslash \\u0000',
            "int64": [2**63 - 1, -(2**63)],
            "float": 0.1,
            "flags": [True, False, None],
            "nested": {"empty": {}, "list": [], "deep": {"k": [1, {"x": "y"}]}},
        }
        user = make_user(metadata=metadata)
        await store.create_user(user)
        stored = await store.get_user(user.user_id)
        assert stored is not None and stored.metadata == metadata

    async def test_nul_character_is_invalid_and_stores_nothing(self, store: MetadataStore) -> None:
        # PostgreSQL cannot store U+0000 in text or JSONB: no store accepts it.
        user = make_user(metadata={"note": "a\x00b"})
        with pytest.raises(InvalidInput):
            await store.create_user(user)
        assert await store.get_user(user.user_id) is None
        (owner,) = await self._users(store, 1)
        conversation = Conversation(
            conversation_id=uuid4(),
            type=ConversationType.GROUP,
            created_by=owner.user_id,
            created_at=T0,
            updated_at=T0,
            metadata={"title\x00": "x"},
        )
        with pytest.raises(InvalidInput):
            await store.create_conversation(conversation, [(owner.user_id, Role.OWNER)])
        assert await store.get_conversation(conversation.conversation_id) is None

    async def test_ids_come_back_as_standard_uuids(self, store: MetadataStore) -> None:
        # Not a driver's subclass (asyncpg has one): orjson and others encode only the real one.
        conversation, people = await self._group(store, 2)
        token = make_token(people[0].user_id)
        await store.add_refresh_token(token)
        user = await store.get_user(people[0].user_id)
        stored_token = await store.get_refresh_token(token.token_hash)
        [(listed, membership)] = await store.list_memberships(people[1].user_id)
        assert user is not None and stored_token is not None
        ids = [
            user.user_id,
            stored_token.token_id,
            stored_token.user_id,
            stored_token.family_id,
            listed.conversation_id,
            listed.created_by,
            membership.user_id,
            *(m.user_id for m in await store.list_members(conversation.conversation_id)),
        ]
        assert {type(i) for i in ids} == {UUID}

    async def test_get_users_returns_those_that_exist(self, store: MetadataStore) -> None:
        a, b, c = await self._users(store, 3)
        found = await store.get_users([a.user_id, c.user_id, uuid4(), a.user_id])
        assert sorted(u.user_id for u in found) == sorted([a.user_id, c.user_id])
        assert await store.get_users([]) == []
        assert b not in found

    # refresh tokens

    async def test_add_and_get_refresh_token(self, store: MetadataStore) -> None:
        (user,) = await self._users(store, 1)
        token = make_token(user.user_id)
        await store.add_refresh_token(token)
        assert await store.get_refresh_token(token.token_hash) == token
        assert await store.get_refresh_token("no-such-hash") is None

    async def test_refresh_token_hash_is_unique(self, store: MetadataStore) -> None:
        (user,) = await self._users(store, 1)
        token = make_token(user.user_id)
        await store.add_refresh_token(token)
        twin = RefreshToken(uuid4(), user.user_id, token.token_hash, uuid4(), T0, T0)
        with pytest.raises(AlreadyExists):
            await store.add_refresh_token(twin)

    async def test_rotate_revokes_old_and_stores_new(self, store: MetadataStore) -> None:
        (user,) = await self._users(store, 1)
        old = make_token(user.user_id)
        await store.add_refresh_token(old)
        new = make_token(user.user_id, family_id=old.family_id)
        now = T0 + timedelta(minutes=5)
        assert await store.rotate_refresh_token(old.token_id, new, now) is True
        stored_old = await store.get_refresh_token(old.token_hash)
        assert stored_old is not None and stored_old.revoked_at == now
        assert await store.get_refresh_token(new.token_hash) == new

    async def test_second_rotation_of_same_token_fails(self, store: MetadataStore) -> None:
        (user,) = await self._users(store, 1)
        old = make_token(user.user_id)
        await store.add_refresh_token(old)
        first = make_token(user.user_id, family_id=old.family_id)
        second = make_token(user.user_id, family_id=old.family_id)
        assert await store.rotate_refresh_token(old.token_id, first, T0) is True
        assert await store.rotate_refresh_token(old.token_id, second, T0) is False
        assert await store.get_refresh_token(second.token_hash) is None

    async def test_concurrent_rotations_only_one_wins(self, store: MetadataStore) -> None:
        (user,) = await self._users(store, 1)
        old = make_token(user.user_id)
        await store.add_refresh_token(old)
        news = [make_token(user.user_id, family_id=old.family_id) for _ in range(4)]
        results = await asyncio.gather(
            *(store.rotate_refresh_token(old.token_id, n, T0) for n in news)
        )
        assert sorted(results) == [False, False, False, True]
        stored = [await store.get_refresh_token(n.token_hash) for n in news]
        assert sum(s is not None for s in stored) == 1

    async def test_rotate_unknown_token_fails(self, store: MetadataStore) -> None:
        (user,) = await self._users(store, 1)
        new = make_token(user.user_id)
        assert await store.rotate_refresh_token(uuid4(), new, T0) is False
        assert await store.get_refresh_token(new.token_hash) is None

    async def test_revoke_family_revokes_only_that_family(self, store: MetadataStore) -> None:
        (user,) = await self._users(store, 1)
        family = uuid4()
        a, b = make_token(user.user_id, family), make_token(user.user_id, family)
        other = make_token(user.user_id)
        for token in (a, b, other):
            await store.add_refresh_token(token)
        now = T0 + timedelta(hours=1)
        await store.revoke_token_family(family, now)
        for token in (a, b):
            stored = await store.get_refresh_token(token.token_hash)
            assert stored is not None and stored.revoked_at == now
        untouched = await store.get_refresh_token(other.token_hash)
        assert untouched is not None and untouched.revoked_at is None
        fresh = make_token(user.user_id, family)
        assert await store.rotate_refresh_token(a.token_id, fresh, now) is False

    async def test_revoke_family_keeps_first_revocation_time(self, store: MetadataStore) -> None:
        (user,) = await self._users(store, 1)
        old = make_token(user.user_id)
        await store.add_refresh_token(old)
        new = make_token(user.user_id, family_id=old.family_id)
        await store.rotate_refresh_token(old.token_id, new, T0)
        await store.revoke_token_family(old.family_id, T0 + timedelta(days=1))
        stored_old = await store.get_refresh_token(old.token_hash)
        assert stored_old is not None and stored_old.revoked_at == T0

    # conversations

    async def test_create_conversation_with_members(self, store: MetadataStore) -> None:
        conversation, people = await self._group(store)
        assert await store.get_conversation(conversation.conversation_id) == conversation
        members = await store.list_members(conversation.conversation_id)
        assert {(m.user_id, m.role) for m in members} == {
            (people[0].user_id, Role.OWNER),
            (people[1].user_id, Role.MEMBER),
            (people[2].user_id, Role.MEMBER),
        }
        for member in members:
            assert member.joined_at == conversation.created_at
            assert (member.last_read_seq, member.last_delivered_seq) == (0, 0)

    async def test_create_conversation_returns_what_was_stored(self, store: MetadataStore) -> None:
        (user,) = await self._users(store, 1)
        conversation = make_conversation(user.user_id)
        stored, created = await store.create_conversation(
            conversation, [(user.user_id, Role.OWNER)]
        )
        assert created is True
        assert stored == conversation

    async def test_get_unknown_conversation_is_none(self, store: MetadataStore) -> None:
        assert await store.get_conversation(uuid4()) is None
        assert await store.list_members(uuid4()) == []

    async def test_conversation_with_unknown_member_stores_nothing(
        self, store: MetadataStore
    ) -> None:
        (user,) = await self._users(store, 1)
        conversation = make_conversation(user.user_id)
        with pytest.raises(InvalidInput):
            await store.create_conversation(
                conversation, [(user.user_id, Role.OWNER), (uuid4(), Role.MEMBER)]
            )
        assert await store.get_conversation(conversation.conversation_id) is None

    async def test_private_key_returns_existing_conversation(self, store: MetadataStore) -> None:
        a, b = await self._users(store, 2)
        key = private_key(a.user_id, b.user_id)
        members = [(a.user_id, Role.OWNER), (b.user_id, Role.MEMBER)]
        first = make_conversation(a.user_id, ConversationType.PRIVATE)
        stored, created = await store.create_conversation(first, members, private_key=key)
        assert created is True and stored == first
        second = make_conversation(b.user_id, ConversationType.PRIVATE)
        again, created_again = await store.create_conversation(
            second, [(b.user_id, Role.OWNER), (a.user_id, Role.MEMBER)], private_key=key
        )
        assert created_again is False
        assert again == first
        assert await store.get_conversation(second.conversation_id) is None

    async def test_concurrent_private_creates_agree(self, store: MetadataStore) -> None:
        a, b = await self._users(store, 2)
        key = private_key(a.user_id, b.user_id)
        attempts = [make_conversation(a.user_id, ConversationType.PRIVATE) for _ in range(2)]
        members = [(a.user_id, Role.OWNER), (b.user_id, Role.MEMBER)]
        results = await asyncio.gather(
            *(store.create_conversation(c, members, private_key=key) for c in attempts)
        )
        (one, created_one), (two, created_two) = results
        assert one == two
        assert sorted([created_one, created_two]) == [False, True]
        assert len(await store.list_members(one.conversation_id)) == 2
        stored = [await store.get_conversation(c.conversation_id) for c in attempts]
        assert sum(s is not None for s in stored) == 1

    async def test_different_pairs_get_different_private_conversations(
        self, store: MetadataStore
    ) -> None:
        a, b, c = await self._users(store, 3)
        ab, _ = await store.create_conversation(
            make_conversation(a.user_id, ConversationType.PRIVATE),
            [(a.user_id, Role.OWNER), (b.user_id, Role.MEMBER)],
            private_key=private_key(a.user_id, b.user_id),
        )
        ac, created = await store.create_conversation(
            make_conversation(a.user_id, ConversationType.PRIVATE),
            [(a.user_id, Role.OWNER), (c.user_id, Role.MEMBER)],
            private_key=private_key(a.user_id, c.user_id),
        )
        assert created is True
        assert ab.conversation_id != ac.conversation_id

    async def test_list_memberships_only_the_users_active_ones(self, store: MetadataStore) -> None:
        me, friend, stranger = await self._users(store, 3)
        older = make_conversation(me.user_id, at=T0)
        newer = make_conversation(friend.user_id, at=T0 + timedelta(hours=1))
        inactive = Conversation(
            conversation_id=uuid4(),
            type=ConversationType.GROUP,
            created_by=me.user_id,
            created_at=T0 + timedelta(hours=2),
            updated_at=T0 + timedelta(hours=2),
            is_active=False,
        )
        not_mine = make_conversation(stranger.user_id, at=T0 + timedelta(hours=3))
        both = [(me.user_id, Role.OWNER), (friend.user_id, Role.MEMBER)]
        await store.create_conversation(older, both)
        await store.create_conversation(
            newer, [(friend.user_id, Role.OWNER), (me.user_id, Role.MEMBER)]
        )
        await store.create_conversation(inactive, both)
        await store.create_conversation(not_mine, [(stranger.user_id, Role.OWNER)])
        mine = await store.list_memberships(me.user_id)
        assert [c.conversation_id for c, _ in mine] == [
            newer.conversation_id,
            older.conversation_id,
        ]
        assert [m.user_id for _, m in mine] == [me.user_id, me.user_id]
        assert await store.list_memberships(uuid4()) == []

    async def test_list_memberships_drops_those_the_user_left(self, store: MetadataStore) -> None:
        conversation, people = await self._group(store)
        await store.remove_member(conversation.conversation_id, people[1].user_id)
        assert await store.list_memberships(people[1].user_id) == []
        [(listed, membership)] = await store.list_memberships(people[0].user_id)
        assert listed == conversation
        assert membership == await store.get_member(conversation.conversation_id, people[0].user_id)

    # members

    async def test_get_member(self, store: MetadataStore) -> None:
        conversation, people = await self._group(store)
        owner = await store.get_member(conversation.conversation_id, people[0].user_id)
        assert owner == Member(people[0].user_id, Role.OWNER, conversation.created_at)
        assert await store.get_member(conversation.conversation_id, uuid4()) is None
        assert await store.get_member(uuid4(), people[0].user_id) is None

    async def test_add_member(self, store: MetadataStore) -> None:
        conversation, _ = await self._group(store)
        (newcomer,) = await self._users(store, 1)
        joined = T0 + timedelta(days=1)
        member = await store.add_member(
            conversation.conversation_id, newcomer.user_id, Role.ADMIN, joined
        )
        assert member == Member(newcomer.user_id, Role.ADMIN, joined)
        stored = await store.get_member(conversation.conversation_id, newcomer.user_id)
        assert stored == member
        assert len(await store.list_members(conversation.conversation_id)) == 4

    async def test_add_existing_member_is_already_exists(self, store: MetadataStore) -> None:
        conversation, people = await self._group(store)
        with pytest.raises(AlreadyExists):
            await store.add_member(conversation.conversation_id, people[1].user_id, Role.ADMIN, T0)
        member = await store.get_member(conversation.conversation_id, people[1].user_id)
        assert member is not None and member.role is Role.MEMBER

    async def test_add_unknown_user_is_invalid(self, store: MetadataStore) -> None:
        conversation, _ = await self._group(store)
        with pytest.raises(InvalidInput):
            await store.add_member(conversation.conversation_id, uuid4(), Role.MEMBER, T0)

    async def test_remove_member(self, store: MetadataStore) -> None:
        conversation, people = await self._group(store)
        cid = conversation.conversation_id
        assert await store.remove_member(cid, people[2].user_id) is True
        assert await store.get_member(cid, people[2].user_id) is None
        assert await store.remove_member(cid, people[2].user_id) is False
        assert {m.user_id for m in await store.list_members(cid)} == {
            people[0].user_id,
            people[1].user_id,
        }

    async def test_removed_member_can_rejoin(self, store: MetadataStore) -> None:
        conversation, people = await self._group(store)
        cid, uid = conversation.conversation_id, people[1].user_id
        await store.remove_member(cid, uid)
        again = await store.add_member(cid, uid, Role.MEMBER, T0 + timedelta(days=2))
        assert again.joined_at == T0 + timedelta(days=2)

    async def test_set_role(self, store: MetadataStore) -> None:
        conversation, people = await self._group(store)
        cid = conversation.conversation_id
        assert await store.set_role(cid, people[1].user_id, Role.ADMIN) is True
        member = await store.get_member(cid, people[1].user_id)
        assert member is not None and member.role is Role.ADMIN
        assert await store.set_role(cid, uuid4(), Role.ADMIN) is False

    # watermarks

    async def test_watermarks_move_forward(self, store: MetadataStore) -> None:
        conversation, people = await self._group(store)
        cid, uid = conversation.conversation_id, people[1].user_id
        before = await store.advance_watermarks(cid, uid, delivered_seq=5)
        assert before is not None
        assert (before.last_read_seq, before.last_delivered_seq) == (0, 0)
        before = await store.advance_watermarks(cid, uid, read_seq=3, delivered_seq=7)
        assert before is not None
        assert (before.last_read_seq, before.last_delivered_seq) == (0, 5)
        now = await store.get_member(cid, uid)
        assert now is not None and (now.last_read_seq, now.last_delivered_seq) == (3, 7)

    async def test_watermarks_never_move_back(self, store: MetadataStore) -> None:
        conversation, people = await self._group(store)
        cid, uid = conversation.conversation_id, people[1].user_id
        await store.advance_watermarks(cid, uid, read_seq=10, delivered_seq=12)
        before = await store.advance_watermarks(cid, uid, read_seq=4, delivered_seq=12)
        assert before is not None
        assert (before.last_read_seq, before.last_delivered_seq) == (10, 12)
        now = await store.get_member(cid, uid)
        assert now is not None and (now.last_read_seq, now.last_delivered_seq) == (10, 12)

    async def test_watermarks_move_independently(self, store: MetadataStore) -> None:
        conversation, people = await self._group(store)
        cid, uid = conversation.conversation_id, people[1].user_id
        await store.advance_watermarks(cid, uid, read_seq=2)
        await store.advance_watermarks(cid, uid, delivered_seq=9)
        await store.advance_watermarks(cid, uid)
        now = await store.get_member(cid, uid)
        assert now is not None and (now.last_read_seq, now.last_delivered_seq) == (2, 9)
        other = await store.get_member(cid, people[2].user_id)
        assert other is not None and (other.last_read_seq, other.last_delivered_seq) == (0, 0)

    async def test_concurrent_watermarks_keep_the_highest(self, store: MetadataStore) -> None:
        conversation, people = await self._group(store)
        cid, uid = conversation.conversation_id, people[1].user_id
        seqs = [7, 3, 20, 11, 15, 1]
        await asyncio.gather(*(store.advance_watermarks(cid, uid, read_seq=s) for s in seqs))
        now = await store.get_member(cid, uid)
        assert now is not None and now.last_read_seq == 20

    async def test_concurrent_batches_over_the_same_rows_all_land(
        self, store: MetadataStore
    ) -> None:
        # Batches that touch the same members in opposite orders: a store that locked rows in
        # the order given would deadlock (PostgreSQL) and lose a batch.
        conversation, people = await self._group(store, 6)
        cid = conversation.conversation_id
        ids = [p.user_id for p in people]

        def batch(seq: int, order: list[UUID]) -> list[WatermarkMove]:
            return [WatermarkMove(cid, u, read_seq=seq, delivered_seq=seq) for u in order]

        await asyncio.gather(
            *(
                store.advance_many_watermarks(batch(i, ids if i % 2 else ids[::-1]))
                for i in range(1, 21)
            )
        )
        for member in await store.list_members(cid):
            assert (member.last_read_seq, member.last_delivered_seq) == (20, 20)

    async def test_watermarks_of_non_member_is_none(self, store: MetadataStore) -> None:
        conversation, _ = await self._group(store)
        assert (
            await store.advance_watermarks(conversation.conversation_id, uuid4(), read_seq=1)
            is None
        )

    async def test_large_sequence_numbers(self, store: MetadataStore) -> None:
        conversation, people = await self._group(store)
        cid, uid = conversation.conversation_id, people[1].user_id
        big = 2**40
        await store.advance_watermarks(cid, uid, read_seq=big, delivered_seq=big + 1)
        now = await store.get_member(cid, uid)
        assert now is not None and (now.last_read_seq, now.last_delivered_seq) == (big, big + 1)

    # time

    async def test_datetimes_come_back_aware_utc(self, store: MetadataStore) -> None:
        brasilia = timezone(timedelta(hours=-3))
        local = datetime(2026, 5, 4, 9, 30, 15, 250000, tzinfo=brasilia)
        user = make_user(at=local)
        await store.create_user(user)
        stored = await store.get_user(user.user_id)
        assert stored is not None
        assert stored.created_at == local
        assert_utc(stored.created_at)
        assert_utc(stored.updated_at)
        assert stored.created_at.hour == 12

        conversation = make_conversation(user.user_id, at=local)
        created, _ = await store.create_conversation(conversation, [(user.user_id, Role.OWNER)])
        for value in (created.created_at, created.updated_at):
            assert value == local
            assert_utc(value)
        ((listed, _),) = await store.list_memberships(user.user_id)
        assert_utc(listed.updated_at)
        member = await store.get_member(conversation.conversation_id, user.user_id)
        assert member is not None
        assert member.joined_at == local
        assert_utc(member.joined_at)

        token = make_token(user.user_id)
        await store.add_refresh_token(token)
        await store.revoke_token_family(token.family_id, local)
        stored_token = await store.get_refresh_token(token.token_hash)
        assert stored_token is not None and stored_token.revoked_at is not None
        for value in (stored_token.expires_at, stored_token.created_at, stored_token.revoked_at):
            assert_utc(value)
        assert stored_token.revoked_at == local

    # health

    async def test_ping(self, store: MetadataStore) -> None:
        await store.ping()

    async def test_advance_many_watermarks_in_one_go(self, store: MetadataStore) -> None:
        conversation, people = await self._group(store)
        cid = conversation.conversation_id
        a, b = people[0].user_id, people[1].user_id
        await store.advance_many_watermarks(
            [
                WatermarkMove(cid, a, read_seq=4, delivered_seq=6),
                WatermarkMove(cid, b, delivered_seq=2),
                WatermarkMove(cid, uuid4(), read_seq=9),  # not a member: ignored
            ]
        )
        await store.advance_many_watermarks([WatermarkMove(cid, a, read_seq=1, delivered_seq=1)])
        member_a = await store.get_member(cid, a)
        member_b = await store.get_member(cid, b)
        assert member_a is not None and member_b is not None
        assert (member_a.last_read_seq, member_a.last_delivered_seq) == (4, 6)
        assert (member_b.last_read_seq, member_b.last_delivered_seq) == (0, 2)
        await store.advance_many_watermarks([])
