"""Users and their credentials."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from chat4all.domain.errors import InvalidInput

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,63}$")
# No control characters (PostgreSQL cannot store NUL) and at most 254 characters (RFC 5321's
# path limit), so every metadata store keeps exactly what this accepts (VARCHAR(255)).
EMAIL_PATTERN = re.compile(
    r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]{1,190}\.[^@\s\x00-\x1f\x7f]{2,63}$"
)
MAX_EMAIL_LENGTH = 254
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256


class UserStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DELETED = "deleted"


@dataclass(frozen=True)
class User:
    user_id: UUID
    username: str
    email: str
    password_hash: str
    created_at: datetime
    updated_at: datetime
    status: UserStatus = UserStatus.ACTIVE
    metadata: dict[str, Any] = field(default_factory=dict)


def check_username(username: str) -> str:
    if not USERNAME_PATTERN.match(username):
        raise InvalidInput(
            "username must be 3-64 characters of letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return username


def check_email(email: str) -> str:
    if len(email) > MAX_EMAIL_LENGTH or not EMAIL_PATTERN.match(email):
        raise InvalidInput("email is not a valid address")
    return email.lower()


def check_password(password: str) -> str:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            f"password must be {MIN_PASSWORD_LENGTH}-{MAX_PASSWORD_LENGTH} characters long"
        )
    return password
