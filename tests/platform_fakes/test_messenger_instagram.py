"""The Messenger and Instagram fakes, checked independently: no maintained Python client for
the Messenger Send API or Instagram Messaging is in the registry (pymessenger, fbmessenger and
messenger-business-api are years old), so these tests check the wire shapes and recompute the
signature themselves. The shared machinery (retries, duplicates, batches, failure injection,
the subscription handshake) is tested here once, on the Messenger fake."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from fastapi import Request, Response

from fakes import instagram, messenger
from fakes.messenger import MessengerConfig
from tests.platform_fakes.conftest import POLICY, URL, Receiver, RecordedSleep, fake_client

NOW = 1_700_000_000.0
SECRET = "messenger-secret"
PAGE = "107208964876522"


def config(receiver: Receiver, sleep: RecordedSleep, **overrides: object) -> MessengerConfig:
    values: dict[str, object] = {
        "access_token": "page-token",
        "app_secret": SECRET,
        "webhook_url": URL,
        "webhook_policy": POLICY,
        "webhook_transport": receiver.transport,
        "clock": lambda: NOW,
        "sleep": sleep,
        "page_id": PAGE,
    }
    return MessengerConfig(**(values | overrides))  # type: ignore[arg-type]


def verified(receiver: Receiver) -> list[dict[str, object]]:
    """Every webhook received, after checking its signature the way Meta documents it."""
    bodies = []
    for item in receiver.received:
        expected = "sha256=" + hmac.new(SECRET.encode(), item.body, hashlib.sha256).hexdigest()
        assert item.headers["x-hub-signature-256"] == expected
        bodies.append(json.loads(item.body))
    return bodies


AUTH = {"Authorization": "Bearer page-token"}


async def test_send_answers_recipient_and_message_ids_and_is_recorded(receiver, sleep):
    async with fake_client(messenger.create_app(config(receiver, sleep))) as client:
        text = {
            "recipient": {"id": "psid-1"},
            "messaging_type": "RESPONSE",
            "message": {"text": "hi"},
        }
        first = await client.post("/v21.0/me/messages", json=text, headers=AUTH)
        attachment = {"attachment": {"type": "file", "payload": {"url": "https://x.test/a.pdf"}}}
        second = await client.post(
            f"/v21.0/{PAGE}/messages",
            json={"recipient": {"id": "psid-1"}, "message": attachment},
            params={"access_token": "page-token"},
        )
        seen = await client.post(
            "/v21.0/me/messages",
            json={"recipient": {"id": "psid-1"}, "sender_action": "mark_seen"},
            headers=AUTH,
        )
        calls = (await client.get("/_control/calls")).json()

    assert first.status_code == second.status_code == seen.status_code == 200
    assert first.json()["recipient_id"] == "psid-1"
    assert first.json()["message_id"].startswith("m_")
    assert first.json()["message_id"] != second.json()["message_id"]
    assert seen.json() == {"recipient_id": "psid-1"}
    assert [call["seq"] for call in calls] == [1, 2, 3]
    assert calls[0]["body"] == text
    assert calls[1]["body"]["message"] == attachment
    assert calls[0]["response"] == first.json()


@pytest.mark.parametrize(
    ("create_app", "limit"), [(messenger.create_app, 2000), (instagram.create_app, 1000)]
)
async def test_bad_requests_get_graph_errors(receiver, sleep, create_app, limit):
    async with fake_client(create_app(config(receiver, sleep))) as client:
        ok = await client.post(
            "/v21.0/me/messages",
            json={"recipient": {"id": "u"}, "message": {"text": "x" * (limit - 1)}},
            headers=AUTH,
        )
        too_long = await client.post(
            "/v21.0/me/messages",
            json={"recipient": {"id": "u"}, "message": {"text": "x" * limit}},
            headers=AUTH,
        )
        no_recipient = await client.post(
            "/v21.0/me/messages", json={"message": {"text": "hi"}}, headers=AUTH
        )
        not_json = await client.post(
            "/v21.0/me/messages",
            content=b"{",
            headers=AUTH | {"Content-Type": "application/json"},
        )
        bad_token = await client.post(
            "/v21.0/me/messages",
            json={"recipient": {"id": "u"}, "message": {"text": "hi"}},
            headers={"Authorization": "Bearer wrong"},
        )

    assert ok.status_code == 200
    for answer in (too_long, no_recipient, not_json):
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == 100
        assert answer.json()["error"]["type"] == "OAuthException"
        assert answer.json()["error"]["fbtrace_id"]
    assert f"less than {limit}" in too_long.json()["error"]["message"]
    assert bad_token.status_code == 401
    assert bad_token.json()["error"]["code"] == 190


async def test_inbound_message_is_a_signed_page_webhook(receiver, sleep):
    async with fake_client(messenger.create_app(config(receiver, sleep))) as client:
        answer = await client.post(
            "/_control/inbound", json={"sender_id": "psid-1", "text": "olá, ünïcode"}
        )

    [body] = verified(receiver)
    mid = answer.json()["message_id"]
    assert body == {
        "object": "page",
        "entry": [
            {
                "id": PAGE,
                "time": int(NOW * 1000),
                "messaging": [
                    {
                        "sender": {"id": "psid-1"},
                        "recipient": {"id": PAGE},
                        "timestamp": int(NOW * 1000),
                        "message": {"mid": mid, "text": "olá, ünïcode"},
                    }
                ],
            }
        ],
    }
    assert b"\\u00fc" in receiver.received[0].body  # non-ASCII escaped, as Meta sends it


async def test_delivery_and_read_watermarks_cover_the_messages_sent(receiver, sleep):
    times = iter([NOW, NOW + 1, NOW + 2, NOW + 3, NOW + 4])
    app = messenger.create_app(config(receiver, sleep, clock=lambda: next(times)))
    async with fake_client(app) as client:
        mids = []
        for text in ("one", "two"):
            sent = await client.post(
                "/v21.0/me/messages",
                json={"recipient": {"id": "psid-1"}, "message": {"text": text}},
                headers=AUTH,
            )
            mids.append(sent.json()["message_id"])
        await client.post(
            "/_control/status", json={"recipient_id": "psid-1", "status": "delivered"}
        )
        await client.post("/_control/status", json={"recipient_id": "psid-1", "status": "read"})
        unknown = await client.post(
            "/_control/status", json={"recipient_id": "nobody", "status": "read"}
        )

    delivery, read = (body["entry"][0]["messaging"][0] for body in verified(receiver))  # type: ignore[index]
    assert delivery["delivery"] == {"mids": mids, "watermark": int((NOW + 1) * 1000)}
    assert delivery["sender"] == {"id": "psid-1"}
    assert read["read"] == {"watermark": int((NOW + 1) * 1000)}
    assert unknown.status_code == 404


async def test_instagram_has_reads_but_no_deliveries(receiver, sleep):
    async with fake_client(instagram.create_app(config(receiver, sleep))) as client:
        sent = await client.post(
            "/v21.0/me/messages",
            json={"recipient": {"id": "igsid-1"}, "message": {"text": "hi"}},
            headers=AUTH,
        )
        delivered = await client.post(
            "/_control/status", json={"recipient_id": "igsid-1", "status": "delivered"}
        )
        read = await client.post(
            "/_control/status", json={"recipient_id": "igsid-1", "status": "read"}
        )
        await client.post("/_control/inbound", json={"sender_id": "igsid-1", "text": "yo"})

    assert delivered.status_code == 422
    assert read.status_code == 200
    seen, inbound = verified(receiver)
    assert seen["object"] == inbound["object"] == "instagram"
    assert seen["entry"][0]["messaging"][0]["read"] == {"mid": sent.json()["message_id"]}  # type: ignore[index]


async def test_webhooks_are_retried_with_backoff_until_accepted(receiver, sleep):
    receiver.statuses = [500, 503]
    async with fake_client(messenger.create_app(config(receiver, sleep))) as client:
        answer = await client.post("/_control/inbound", json={"sender_id": "p", "text": "hi"})
        attempts = (await client.get("/_control/webhooks")).json()

    assert [d["status"] for d in answer.json()["deliveries"]] == [500, 503, 200]
    assert attempts == answer.json()["deliveries"]
    assert sleep.waits == [0.5, 1.0]
    assert len({item.body for item in receiver.received}) == 1  # the same bytes every time


async def test_webhooks_are_given_up_after_the_last_attempt(receiver, sleep):
    receiver.statuses = [500] * 10
    async with fake_client(messenger.create_app(config(receiver, sleep))) as client:
        answer = await client.post("/_control/inbound", json={"sender_id": "p", "text": "hi"})

    deliveries = answer.json()["deliveries"]
    assert [d["attempt"] for d in deliveries] == [1, 2, 3, 4]
    assert [d["gave_up"] for d in deliveries] == [False, False, False, True]
    assert sleep.waits == [0.5, 1.0, 1.5]  # doubling, capped at max_delay


async def test_unreachable_webhook_is_recorded_as_an_error(sleep):
    unreachable = MessengerConfig(
        webhook_url="http://127.0.0.1:9/hook", webhook_policy=POLICY, sleep=sleep
    )
    async with fake_client(messenger.create_app(unreachable)) as client:
        answer = await client.post("/_control/inbound", json={"sender_id": "p", "text": "hi"})

    deliveries = answer.json()["deliveries"]
    assert len(deliveries) == POLICY.attempts
    assert deliveries[-1]["status"] is None
    assert "Connect" in deliveries[-1]["error"]


async def test_duplicate_and_out_of_order_batches(receiver, sleep):
    async with fake_client(messenger.create_app(config(receiver, sleep))) as client:
        twice = await client.post(
            "/_control/inbound", json={"sender_id": "p", "text": "again", "duplicate": True}
        )
        batch = await client.post(
            "/_control/batch",
            json={
                "events": [{"sender_id": "p", "text": str(n)} for n in range(3)],
                "order": "reverse",
            },
        )

    first, second, *reordered = verified(receiver)
    assert first == second
    assert receiver.received[0].body == receiver.received[1].body
    assert len(twice.json()["deliveries"]) == 2
    events = [body["entry"][0]["messaging"][0] for body in reordered]  # type: ignore[index]
    assert [e["message"]["text"] for e in events] == ["2", "1", "0"]
    # The platform's timestamps keep the order the contact wrote in.
    assert [e["timestamp"] for e in events] == [int(NOW * 1000) + n for n in (2, 1, 0)]
    assert batch.json()["delivered_order"] == list(reversed(batch.json()["message_ids"]))


async def test_fail_next_answers_the_platform_error_then_recovers(receiver, sleep):
    async with fake_client(messenger.create_app(config(receiver, sleep))) as client:
        armed = await client.post(
            "/_control/fail-next",
            json={"count": 2, "status": 429, "code": 613, "retry_after": 7, "match": "/messages"},
        )
        send = {"recipient": {"id": "p"}, "message": {"text": "hi"}}
        answers = [
            await client.post("/v21.0/me/messages", json=send, headers=AUTH) for _ in range(3)
        ]
        calls = (await client.get("/_control/calls")).json()

    assert armed.json() == {"armed": 2}
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].headers["retry-after"] == "7"
    error = answers[0].json()["error"]
    assert error["code"] == 613
    assert "rate limit" in error["message"]
    assert [call["status"] for call in calls] == [429, 429, 200]


async def test_subscription_handshake(receiver: Receiver, sleep: RecordedSleep) -> None:
    @receiver.app.get("/hook")
    async def challenge(request: Request) -> Response:
        query = request.query_params
        if query["hub.mode"] == "subscribe" and query["hub.verify_token"] == "vt":
            return Response(query["hub.challenge"])
        return Response("forbidden", status_code=403)

    app = messenger.create_app(config(receiver, sleep, webhook_url=None))
    async with fake_client(app) as client:
        no_url = await client.post("/_control/inbound", json={"sender_id": "p", "text": "hi"})
        wrong = await client.post(
            "/_control/subscribe", json={"callback_url": URL, "verify_token": "nope"}
        )
        right = await client.post(
            "/_control/subscribe", json={"callback_url": URL, "verify_token": "vt"}
        )
        delivered = await client.post("/_control/inbound", json={"sender_id": "p", "text": "hi"})

    assert no_url.status_code == 409
    assert wrong.json() == {"verified": False, "status": 403, "body": "forbidden"}
    assert right.json() == {"verified": True}
    assert delivered.json()["deliveries"][0]["status"] == 200


async def test_bad_control_requests_are_422_and_reset_forgets(receiver, sleep):
    async with fake_client(messenger.create_app(config(receiver, sleep))) as client:
        no_text = await client.post("/_control/inbound", json={"sender_id": "p"})
        not_json = await client.post("/_control/inbound", content=b"nope")
        bad_failure = await client.post("/_control/fail-next", json={"status": 200})
        await client.post(
            "/v21.0/me/messages",
            json={"recipient": {"id": "p"}, "message": {"text": "hi"}},
            headers=AUTH,
        )
        await client.post("/_control/reset")
        calls = (await client.get("/_control/calls")).json()
        status = await client.post("/_control/status", json={"recipient_id": "p", "status": "read"})

    assert no_text.status_code == not_json.status_code == bad_failure.status_code == 422
    assert calls == []
    assert status.status_code == 404  # the sent message was forgotten too
