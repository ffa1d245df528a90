"""Meta's Graph API (WhatsApp, Messenger, Instagram): the webhook handshake, the
`X-Hub-Signature-256` check and the error envelope."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import orjson

from chat4all.connectors.http import retry_after_header, transient_status
from chat4all.ports.connectors import (
    ChannelAccount,
    SendError,
    WebhookMalformed,
    WebhookRejected,
)

# Throughput, pair-rate, app- and page-level rate limits: wait and try again.
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, 80007, 130429, 131056, 131057})
# Temporary platform-side failures.
TRANSIENT_CODES = frozenset({1, 2, 131000, 131016})


def verify_handshake(account: ChannelAccount, query: Mapping[str, str]) -> str:
    """`hub.challenge` when `hub.mode` is subscribe and `hub.verify_token` is the account's."""
    expected = str(account.setting("verify_token") or "")
    token = query.get("hub.verify_token", "")
    if query.get("hub.mode") != "subscribe" or not expected:
        raise WebhookRejected("not a subscription request for a configured verify token")
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise WebhookRejected("hub.verify_token does not match the account's verify_token")
    return query.get("hub.challenge", "")


def verify_signature(account: ChannelAccount, body: bytes, headers: Mapping[str, str]) -> None:
    """HMAC-SHA256 of the raw body with the app secret (never of re-serialised JSON: Meta
    escapes unicode, so the bytes differ)."""
    secret = str(account.setting("app_secret") or "")
    if not secret:
        raise WebhookRejected("the account has no app_secret to check signatures with")
    given = headers.get("x-hub-signature-256", "")
    if not given.startswith("sha256="):
        raise WebhookRejected("missing X-Hub-Signature-256", 401)
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(given.removeprefix("sha256=").lower(), expected):
        raise WebhookRejected("X-Hub-Signature-256 does not match the body", 401)


def read_error(status: int, body: Any, headers: Mapping[str, str]) -> SendError:
    """Meta says to act on `error.code`, not the HTTP status (131056 comes as 400 or 429)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return SendError(
            f"HTTP {status} without a Graph error body",
            retryable=transient_status(status),
            retry_after=retry_after_header(headers),
            code=str(status),
        )
    code = error.get("code")
    details = (error.get("error_data") or {}).get("details") if error.get("error_data") else None
    reason = f"({code}) {error.get('message', 'error')}" + (f": {details}" if details else "")
    retryable = code in RATE_LIMIT_CODES or code in TRANSIENT_CODES or status >= 500
    return SendError(
        reason, retryable=retryable, retry_after=retry_after_header(headers), code=str(code)
    )


def load(body: bytes, expected_object: str) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise WebhookMalformed(f"the body is not JSON: {e}") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("entry"), list):
        raise WebhookMalformed("the body has no `entry` list")
    if doc.get("object") != expected_object:
        raise WebhookMalformed(f"`object` is {doc.get('object')!r}, not {expected_object!r}")
    return doc


def graph_url(account: ChannelAccount, default_base: str, node: str) -> str:
    base = str(account.setting("base_url") or default_base).rstrip("/")
    version = str(account.setting("api_version") or "v21.0")
    return f"{base}/{version}/{node}/messages"
