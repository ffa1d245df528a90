"""Accounts and tokens: register, sign in, refresh with rotation, sign out.

Access tokens are short-lived JWTs (HS256). Refresh tokens are random strings stored only as
SHA-256 hashes; each refresh rotates the token, and presenting an already rotated token revokes
its whole family (a stolen token is detected the first time either party uses it).

Internal tokens are what one Chat4All process shows another when it calls a service on a
user's behalf (the gateway calling a remote message service): short-lived JWTs for another
audience, signed with the same secret. A user's access token is never an internal one, nor the
reverse.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID, uuid4

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from chat4all.domain.errors import NotFound, Unauthenticated
from chat4all.domain.users import User, check_email, check_password, check_username
from chat4all.ports.clock import Clock
from chat4all.ports.metadata import MetadataStore, RefreshToken
from chat4all.ports.realtime import KeyValueCache
from chat4all.services.interfaces import Principal, TokenPair

ISSUER = "chat4all"
INTERNAL_AUDIENCE = "chat4all-internal"
_REVOKED_PREFIX = "revoked-jti:"
_VERIFIED_TOKENS = 10_000


@dataclass(frozen=True)
class AuthPolicy:
    secret: str
    access_ttl: timedelta
    refresh_ttl: timedelta
    hash_time_cost: int = 2
    hash_memory_kib: int = 19 * 1024


class AuthService:
    def __init__(
        self, store: MetadataStore, cache: KeyValueCache, clock: Clock, policy: AuthPolicy
    ) -> None:
        self._store = store
        self._cache = cache
        self._clock = clock
        self._policy = policy
        self._hasher = PasswordHasher(
            time_cost=policy.hash_time_cost, memory_cost=policy.hash_memory_kib
        )
        # A hash to verify against when the user does not exist, so timing does not tell.
        self._dummy_hash = self._hasher.hash(secrets.token_hex(16))
        # Signature checks are the costliest part of authenticating a request; a token's
        # claims never change, so verified ones are remembered (expiry and revocation are
        # still checked on every use).
        self._verified: dict[str, Principal] = {}

    async def register(self, username: str, email: str, password: str) -> User:
        check_username(username)
        email = check_email(email)
        check_password(password)
        now = self._clock.now()
        password_hash = await asyncio.to_thread(self._hasher.hash, password)
        user = User(uuid4(), username, email, password_hash, now, now)
        await self._store.create_user(user)
        return user

    async def login(self, username: str, password: str) -> TokenPair:
        user = await self._store.get_user_by_username(username)
        hashed = user.password_hash if user else self._dummy_hash
        valid = await asyncio.to_thread(self._verify, hashed, password)
        if user is None or not valid or user.status != "active":
            raise Unauthenticated("wrong username or password")
        return await self._issue(user.user_id, family_id=uuid4())

    async def refresh(self, refresh_token: str) -> TokenPair:
        now = self._clock.now()
        stored = await self._store.get_refresh_token(_digest(refresh_token))
        if stored is None or stored.expires_at <= now:
            raise Unauthenticated("the refresh token is unknown or expired")
        if stored.revoked_at is not None:
            await self._store.revoke_token_family(stored.family_id, now)
            raise Unauthenticated("the refresh token was already used; its session is revoked")
        new_secret, new_token = self._new_refresh_token(stored.user_id, stored.family_id)
        if not await self._store.rotate_refresh_token(stored.token_id, new_token, now):
            await self._store.revoke_token_family(stored.family_id, now)
            raise Unauthenticated("the refresh token was already used; its session is revoked")
        return TokenPair(self._access_token(stored.user_id), new_secret, self._access_seconds)

    async def logout(self, principal: Principal, refresh_token: str | None) -> None:
        """Revoke the access token now and, when given, the refresh token's whole session."""
        remaining = principal.expires_at - self._clock.now().timestamp()
        if remaining > 0:
            await self._cache.set(_REVOKED_PREFIX + principal.token_id, b"1", remaining)
        if refresh_token:
            stored = await self._store.get_refresh_token(_digest(refresh_token))
            if stored is not None and stored.user_id == principal.user_id:
                await self._store.revoke_token_family(stored.family_id, self._clock.now())

    async def authenticate(self, access_token: str) -> Principal:
        principal = self._verified.get(access_token)
        if principal is None:
            principal = self._decode(access_token)
            if len(self._verified) >= _VERIFIED_TOKENS:
                self._verified.clear()
            self._verified[access_token] = principal
        if principal.expires_at <= self._clock.now().timestamp():
            raise Unauthenticated("the access token has expired")
        if await self._cache.get(_REVOKED_PREFIX + principal.token_id) is not None:
            raise Unauthenticated("the access token was revoked")
        return principal

    def _decode(self, access_token: str) -> Principal:
        try:
            claims = jwt.decode(
                access_token,
                self._policy.secret,
                algorithms=["HS256"],
                issuer=ISSUER,
                # expiry is checked by authenticate(), against the injected clock
                options={"require": ["exp", "sub", "jti", "iss"], "verify_exp": False},
            )
        except jwt.PyJWTError as e:
            raise Unauthenticated("the access token is not valid") from e
        try:
            user_id = UUID(claims["sub"])
        except ValueError as e:
            raise Unauthenticated("the access token is not valid") from e
        return Principal(user_id, claims["jti"], float(claims["exp"]), access_token)

    async def get_user(self, user_id: UUID) -> User:
        user = await self._store.get_user(user_id)
        if user is None:
            raise Unauthenticated("the account no longer exists")
        return user

    async def user_id_of(self, username: str) -> UUID:
        user = await self._store.get_user_by_username(username)
        if user is None:
            raise NotFound(f"no user is called {username!r}")
        return user.user_id

    @property
    def _access_seconds(self) -> int:
        return int(self._policy.access_ttl.total_seconds())

    def _verify(self, hashed: str, password: str) -> bool:
        try:
            return self._hasher.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return False

    async def _issue(self, user_id: UUID, family_id: UUID) -> TokenPair:
        secret, token = self._new_refresh_token(user_id, family_id)
        await self._store.add_refresh_token(token)
        return TokenPair(self._access_token(user_id), secret, self._access_seconds)

    def _new_refresh_token(self, user_id: UUID, family_id: UUID) -> tuple[str, RefreshToken]:
        now = self._clock.now()
        secret = secrets.token_urlsafe(32)
        token = RefreshToken(
            token_id=uuid4(),
            user_id=user_id,
            token_hash=_digest(secret),
            family_id=family_id,
            expires_at=now + self._policy.refresh_ttl,
            created_at=now,
        )
        return secret, token

    def _access_token(self, user_id: UUID) -> str:
        now = self._clock.now()
        claims = {
            "iss": ISSUER,
            "sub": str(user_id),
            "jti": uuid4().hex,
            "iat": int(now.timestamp()),
            "exp": int((now + self._policy.access_ttl).timestamp()),
        }
        return jwt.encode(claims, self._policy.secret, algorithm="HS256")


class InternalTokens:
    """Issues and checks internal tokens: what a Chat4All process shows another when it calls
    a service on a user's behalf."""

    def __init__(
        self,
        secret: str,
        clock: Clock,
        service: str = "gateway",
        ttl: timedelta = timedelta(minutes=5),
    ) -> None:
        self._secret = secret
        self._clock = clock
        self._service = service
        self._ttl = ttl
        self._current: tuple[str, float] | None = None

    def token(self) -> str:
        """A valid token for this process; the same one until it nears expiry."""
        now = self._clock.now()
        if (
            self._current is None
            or self._current[1] - now.timestamp() < self._ttl.total_seconds() / 5
        ):
            expires = now + self._ttl
            claims = {
                "iss": ISSUER,
                "aud": INTERNAL_AUDIENCE,
                "sub": f"service:{self._service}",
                "iat": int(now.timestamp()),
                "exp": int(expires.timestamp()),
            }
            self._current = (
                jwt.encode(claims, self._secret, algorithm="HS256"),
                expires.timestamp(),
            )
        return self._current[0]

    def check(self, token: str) -> str:
        """The calling service's name; `Unauthenticated` unless `token` is a valid internal
        token."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                issuer=ISSUER,
                audience=INTERNAL_AUDIENCE,
                options={"require": ["exp", "sub", "iss", "aud"], "verify_exp": False},
            )
        except jwt.PyJWTError as e:
            raise Unauthenticated("not a valid internal token") from e
        if float(claims["exp"]) <= self._clock.now().timestamp():
            raise Unauthenticated("the internal token has expired")
        return str(claims["sub"])


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
