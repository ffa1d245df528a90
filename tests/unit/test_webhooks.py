"""The webhook rules: signatures as the `standardwebhooks` library checks them, the retry
schedule, rotation windows, event names, URLs and the addresses SSRF refuses."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from standardwebhooks.webhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

from chat4all.domain.errors import InvalidInput
from chat4all.domain.webhooks import (
    DEFAULT_RETRY_SCHEDULE,
    Webhook,
    WebhookEvent,
    delivery_id,
    new_secret,
    next_attempt_delay,
    parse_events,
    parse_url,
    refused_address,
    sign,
)

BODY = '{"type":"message.sent","data":{"text":"olá"}}'


def headers(signature: str, msg_id: str, timestamp: int) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def test_secrets_are_whsec_and_32_random_bytes() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert new_secret() != secret


def test_signatures_verify_with_the_standardwebhooks_library() -> None:
    secret, now = new_secret(), int(datetime.now(UTC).timestamp())
    signature = sign([secret], "msg_1", now, BODY)
    assert signature.startswith("v1,")
    assert Verifier(secret).verify(BODY, headers(signature, "msg_1", now)) is not None
    for tampered in (headers(signature, "msg_2", now), headers(signature, "msg_1", now + 1)):
        with pytest.raises(WebhookVerificationError):
            Verifier(secret).verify(BODY, tampered)
    with pytest.raises(WebhookVerificationError):
        Verifier(new_secret()).verify(BODY, headers(signature, "msg_1", now))


def test_several_secrets_give_one_signature_each() -> None:
    old, new, now = new_secret(), new_secret(), int(datetime.now(UTC).timestamp())
    signature = sign([new, old], "msg_1", now, BODY)
    assert len(signature.split(" ")) == 2
    for secret in (old, new):
        Verifier(secret).verify(BODY, headers(signature, "msg_1", now))


def test_the_old_secret_signs_only_during_the_overlap() -> None:
    t0 = datetime(2026, 5, 1, tzinfo=UTC)
    webhook = Webhook(uuid4(), uuid4(), "https://x.example/", (WebhookEvent.MESSAGE_SENT,), "a", t0)
    assert webhook.signing_secrets(t0) == ["a"]
    rotated = webhook.rotated("b", t0, timedelta(hours=1))
    assert rotated.signing_secrets(t0 + timedelta(minutes=59)) == ["b", "a"]
    assert rotated.signing_secrets(t0 + timedelta(hours=1)) == ["b"]
    assert webhook.rotated("b", t0, timedelta(0)).signing_secrets(t0) == ["b"]


def test_the_schedule_then_the_dead_letter() -> None:
    delays = [next_attempt_delay(n, DEFAULT_RETRY_SCHEDULE, 0.0) for n in range(1, 9)]
    assert delays == [5, 300, 1800, 7200, 18000, 36000, 36000, None]
    assert sum(DEFAULT_RETRY_SCHEDULE) / 3600 == pytest.approx(27.6, abs=0.1)
    assert next_attempt_delay(1, (100,), 1.0) == pytest.approx(120)
    assert next_attempt_delay(1, (100,), -1.0) == pytest.approx(80)
    assert next_attempt_delay(1, (100,), 7.0) == pytest.approx(120)  # jitter is clamped


def test_one_event_to_one_webhook_is_one_delivery() -> None:
    webhook_id = uuid4()
    assert delivery_id(webhook_id, "e1") == delivery_id(webhook_id, "e1")
    assert delivery_id(webhook_id, "e1") != delivery_id(webhook_id, "e2")
    assert delivery_id(webhook_id, "e1") != delivery_id(uuid4(), "e1")


def test_events_are_known_names_deduplicated() -> None:
    assert parse_events(["message.read", "file.uploaded", "message.read"]) == (
        WebhookEvent.MESSAGE_READ,
        WebhookEvent.FILE_UPLOADED,
    )
    with pytest.raises(InvalidInput, match=r"unknown event 'user\.presence'"):
        parse_events(["user.presence"])
    with pytest.raises(InvalidInput, match="at least one"):
        parse_events([])


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("::ffff:127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("100.64.0.1", "non-global"),  # carrier-grade NAT
        ("240.0.0.1", "private"),  # reserved (Python counts it among the private ranges)
        ("93.184.215.14", None),
        ("2606:4700::6810:85e5", None),
    ],
)
def test_refused_addresses(address: str, kind: str | None) -> None:
    assert refused_address(address) == kind


def test_urls() -> None:
    assert parse_url("https://hooks.example.com/in").port == 443
    assert parse_url("http://hooks.example.com/in").port == 80
    endpoint = parse_url("http://[::1]:8080/x")
    assert (endpoint.host, endpoint.port) == ("::1", 8080)
    for bad, why in [
        ("ftp://a.example/", "http or https"),
        ("/relative", "http or https"),
        ("http:///x", "no host"),
        ("http://u:p@a.example/", "credentials"),
        ("http://a.example:99999/", "cannot be parsed"),
        ("https://a.example/" + "x" * 3000, "limit"),
    ]:
        with pytest.raises(InvalidInput, match=why):
            parse_url(bad)
