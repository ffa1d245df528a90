"""Opaque pagination cursors: base64url of a small JSON object."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from chat4all.domain.errors import InvalidInput


def encode(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(position)).decode().rstrip("=")


def decode(cursor: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = orjson.loads(raw)
    except (binascii.Error, ValueError) as e:
        raise InvalidInput("`cursor` is not a cursor this API gave out") from e
    if not isinstance(position, dict):
        raise InvalidInput("`cursor` is not a cursor this API gave out")
    return position
