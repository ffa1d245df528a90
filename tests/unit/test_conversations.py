from datetime import UTC, datetime
from uuid import uuid4

import pytest

from chat4all.domain.conversations import (
    Conversation,
    ConversationType,
    Member,
    Role,
    check_can_add,
    check_can_remove,
    check_can_set_role,
    initial_members,
)
from chat4all.domain.errors import Forbidden, InvalidInput

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def group():
    return Conversation(uuid4(), ConversationType.GROUP, uuid4(), NOW, NOW)


def member(role):
    return Member(uuid4(), role, NOW)


def test_private_needs_exactly_one_other():
    me, you = uuid4(), uuid4()
    assert initial_members(ConversationType.PRIVATE, me, [you, you, me], 10) == [
        (me, Role.OWNER),
        (you, Role.MEMBER),
    ]
    with pytest.raises(InvalidInput):
        initial_members(ConversationType.PRIVATE, me, [], 10)
    with pytest.raises(InvalidInput):
        initial_members(ConversationType.PRIVATE, me, [uuid4(), uuid4()], 10)


def test_group_size_cap():
    me = uuid4()
    assert len(initial_members(ConversationType.GROUP, me, [uuid4() for _ in range(9)], 10)) == 10
    with pytest.raises(InvalidInput):
        initial_members(ConversationType.GROUP, me, [uuid4() for _ in range(10)], 10)
    with pytest.raises(InvalidInput):
        check_can_add(group(), member(Role.OWNER), current_size=10, limit=10)


def test_who_may_add_remove_and_set_roles():
    g = group()
    owner, admin, plain = member(Role.OWNER), member(Role.ADMIN), member(Role.MEMBER)
    check_can_add(g, admin, 3, 10)
    with pytest.raises(Forbidden):
        check_can_add(g, plain, 3, 10)
    everyone = [owner, admin, plain]
    check_can_remove(g, owner, admin, everyone)
    check_can_remove(g, admin, plain, everyone)
    check_can_remove(g, plain, plain, everyone)  # leaving
    with pytest.raises(Forbidden):
        check_can_remove(g, admin, owner, everyone)
    with pytest.raises(Forbidden):
        check_can_remove(g, plain, admin, everyone)
    with pytest.raises(InvalidInput, match="last owner"):
        check_can_remove(g, owner, owner, everyone)
    check_can_remove(g, owner, owner, [owner])  # alone, the owner may leave
    check_can_set_role(g, owner, Role.ADMIN)
    with pytest.raises(Forbidden):
        check_can_set_role(g, admin, Role.ADMIN)


def test_private_conversations_have_fixed_members():
    p = Conversation(uuid4(), ConversationType.PRIVATE, uuid4(), NOW, NOW)
    with pytest.raises(InvalidInput):
        check_can_add(p, member(Role.OWNER), 2, 10)
