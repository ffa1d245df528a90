"""AuthService against the real SQLite metadata store, with time under the test's control."""

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from chat4all.adapters.memory.realtime import InProcessCache
from chat4all.adapters.sql import SqlMetadataStore, upgrade
from chat4all.domain.errors import Unauthenticated
from chat4all.services.auth import AuthPolicy, AuthService
from tests.fakes import FakeClock


@pytest.fixture
async def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def auth(tmp_path, clock) -> AsyncIterator[AuthService]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'metadata.db'}"
    await upgrade(url)
    store = await SqlMetadataStore.connect(url)
    policy = AuthPolicy(
        secret="s" * 40,
        access_ttl=timedelta(minutes=15),
        refresh_ttl=timedelta(days=1),
        hash_time_cost=1,
        hash_memory_kib=1024,
    )
    yield AuthService(store, InProcessCache(clock), clock, policy)
    await store.close()


async def test_access_token_expires_on_the_clock_even_when_remembered(auth, clock):
    user = await auth.register("alice", "alice@example.com", "long password")
    tokens = await auth.login("alice", "long password")
    assert (await auth.authenticate(tokens.access_token)).user_id == user.user_id
    clock.advance(15 * 60 + 1)
    with pytest.raises(Unauthenticated, match="expired"):
        await auth.authenticate(tokens.access_token)


async def test_refresh_token_expires(auth, clock):
    await auth.register("bob", "bob@example.com", "long password")
    tokens = await auth.login("bob", "long password")
    clock.advance(24 * 3600 + 1)
    with pytest.raises(Unauthenticated, match="expired"):
        await auth.refresh(tokens.refresh_token)


async def test_logout_revokes_a_remembered_token_until_it_would_expire(auth, clock):
    await auth.register("carol", "carol@example.com", "long password")
    tokens = await auth.login("carol", "long password")
    principal = await auth.authenticate(tokens.access_token)
    await auth.logout(principal, tokens.refresh_token)
    with pytest.raises(Unauthenticated, match="revoked"):
        await auth.authenticate(tokens.access_token)
    with pytest.raises(Unauthenticated):
        await auth.refresh(tokens.refresh_token)


async def test_tampered_token_is_refused(auth):
    await auth.register("dave", "dave@example.com", "long password")
    tokens = await auth.login("dave", "long password")
    head, body, signature = tokens.access_token.split(".")
    tampered = f"{head}.{body}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    with pytest.raises(Unauthenticated, match="not valid"):
        await auth.authenticate(tampered)


async def test_internal_tokens_and_access_tokens_are_never_each_other(auth, clock):
    from chat4all.services.auth import InternalTokens

    await auth.register("erin", "erin@example.com", "long password")
    access = (await auth.login("erin", "long password")).access_token
    internal = InternalTokens("s" * 40, clock, service="gateway")
    token = internal.token()
    assert internal.check(token) == "service:gateway"
    assert internal.token() == token  # reused while fresh
    with pytest.raises(Unauthenticated, match="not valid"):
        await auth.authenticate(token)
    with pytest.raises(Unauthenticated, match="not a valid internal token"):
        internal.check(access)
    with pytest.raises(Unauthenticated, match="not a valid internal token"):
        InternalTokens("t" * 40, clock).check(token)  # another secret
    clock.advance(5 * 60 - 30)
    assert internal.token() != token  # reissued before it expires
    clock.advance(31)
    with pytest.raises(Unauthenticated, match="expired"):
        internal.check(token)
