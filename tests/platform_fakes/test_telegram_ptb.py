"""The Telegram fake driven by python-telegram-bot, over HTTP: its requests, its parsing of the
answers and its mapping of the error bodies must work unchanged."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
import telegram
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, RetryAfter

from chat4all.devcluster import free_port
from fakes import telegram as telegram_fake
from fakes.serving import serving
from fakes.telegram import TelegramConfig
from tests.platform_fakes.conftest import POLICY, URL, Receiver, RecordedSleep

TOKEN = "123456:AAH-fake-token"
NOW = 1_700_000_000.0


@pytest.fixture
async def fake(receiver: Receiver, sleep: RecordedSleep) -> AsyncIterator[tuple[str, object]]:
    config = TelegramConfig(
        bot_token=TOKEN,
        webhook_policy=POLICY,
        webhook_transport=receiver.transport,
        clock=lambda: NOW,
        sleep=sleep,
    )
    app = telegram_fake.create_app(config)
    async with serving(app, "127.0.0.1", free_port()) as url:
        yield url, app


def bot(url: str, token: str = TOKEN) -> telegram.Bot:
    return telegram.Bot(token, base_url=f"{url}/bot", base_file_url=f"{url}/file/bot")


async def calls(url: str) -> list[dict[str, object]]:
    async with httpx.AsyncClient(base_url=url) as client:
        return (await client.get("/_control/calls")).json()  # type: ignore[no-any-return]


async def control(url: str, path: str, body: object) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url) as client:
        return await client.post(f"/_control/{path}", json=body)


async def test_get_me_send_message_and_documents(fake):
    url, _ = fake
    async with bot(url) as client:  # `async with` calls getMe
        me = await client.get_me()
        sent = await client.send_message(chat_id=42, text="hello", reply_parameters=None)
        by_upload = await client.send_document(
            chat_id=42, document=b"%PDF-1.4 fake", filename="report.pdf", caption="the report"
        )
        by_url = await client.send_document(chat_id=42, document="https://files.test/b.txt")
        file = await client.get_file(by_upload.document.file_id)  # type: ignore[union-attr]
        downloaded = await file.download_as_bytearray()

    assert me.id == 123456
    assert me.is_bot
    assert me.username == "chat4all_fake_bot"
    assert sent.text == "hello"
    assert sent.chat.id == 42
    assert by_upload.document is not None
    assert by_upload.document.file_name == "report.pdf"
    assert by_upload.caption == "the report"
    assert by_url.document is not None
    assert by_url.document.file_name == "b.txt"
    assert bytes(downloaded) == b"%PDF-1.4 fake"
    assert sent.message_id < by_upload.message_id < by_url.message_id

    recorded = await calls(url)
    paths = [str(call["path"]).rsplit("/", 1)[-1] for call in recorded]
    assert paths == [
        "getMe",
        "getMe",
        "sendMessage",
        "sendDocument",
        "sendDocument",
        "getFile",
        "file_0.pdf",
    ]
    upload = recorded[3]["body"]
    assert isinstance(upload, dict)
    assert upload["document"]["filename"] == "report.pdf"


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_errors_map_to_the_library_exceptions(fake):
    url, _ = fake
    async with bot(url) as client:
        await control(url, "fail-next", {"status": 429, "retry_after": 5, "match": "sendMessage"})
        with pytest.raises(RetryAfter) as throttled:
            await client.send_message(chat_id=42, text="hello")
        with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
            await client.send_message(chat_id=42, text=" ")
        with pytest.raises(BadRequest, match=r"(?i)message is too long"):
            await client.send_message(chat_id=42, text="x" * 4097)
        with pytest.raises(BadRequest, match=r"(?i)chat not found"):
            await client.send_message(chat_id="not a chat", text="hi")
        await control(url, "fail-next", {"status": 403})
        with pytest.raises(Forbidden, match=r"(?i)bot was blocked by the user"):
            await client.send_message(chat_id=42, text="hello")
        longest = await client.send_message(chat_id=42, text="x" * 4096)

    retry_after = throttled.value.retry_after  # an int until PTB_TIMEDELTA becomes the default
    assert (retry_after.total_seconds() if isinstance(retry_after, timedelta) else retry_after) == 5
    assert longest.text == "x" * 4096
    with pytest.raises(InvalidToken):
        async with bot(url, "123456:wrong-token"):
            pass


async def test_raw_error_envelope(fake):
    url, _ = fake
    await control(url, "fail-next", {"status": 429, "retry_after": 3})
    async with httpx.AsyncClient(base_url=url) as client:
        throttled = await client.post(f"/bot{TOKEN}/sendMessage", json={"chat_id": 1, "text": "a"})
        unknown = await client.get(f"/bot{TOKEN}/noSuchMethod")
    assert throttled.status_code == 429
    assert throttled.json() == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 3",
        "parameters": {"retry_after": 3},
    }
    assert unknown.status_code == 404
    assert unknown.json() == {"ok": False, "error_code": 404, "description": "Not Found"}


async def test_updates_go_to_the_webhook_with_the_secret_token(fake, receiver):
    url, _ = fake
    async with bot(url) as client:
        assert await client.set_webhook(URL, secret_token="s3cr3t_token")
        info = await client.get_webhook_info()
        with pytest.raises(Conflict):
            await client.get_updates()
        inbound = await control(
            url,
            "inbound",
            {"chat_id": 42, "text": "hi bot", "first_name": "Ana", "username": "ana"},
        )
        with pytest.raises(BadRequest, match=r"(?i)secret token"):
            await client.set_webhook(URL, secret_token="not allowed!")

        [received] = receiver.received
        update = telegram.Update.de_json(json.loads(received.body), client)

    assert info.url == URL
    assert received.headers["x-telegram-bot-api-secret-token"] == "s3cr3t_token"
    assert update is not None
    assert str(update.update_id) == inbound.json()["message_id"]
    assert update.message is not None
    assert update.message.text == "hi bot"
    assert update.message.chat.id == 42
    assert update.message.from_user is not None
    assert update.message.from_user.username == "ana"
    assert update.message.date.timestamp() == NOW


async def test_without_a_webhook_updates_wait_for_get_updates(fake, receiver):
    url, _ = fake
    async with bot(url) as client:
        await client.delete_webhook()
        batch = await control(
            url,
            "batch",
            {"events": [{"chat_id": 7, "text": str(n)} for n in range(3)], "order": "reverse"},
        )
        first = await client.get_updates(timeout=0)
        info = await client.get_webhook_info()
        confirmed = await client.get_updates(offset=first[1].update_id, timeout=0)
        empty = await client.get_updates(offset=first[-1].update_id + 1, timeout=0)

    assert batch.json()["deliveries"] == []
    assert receiver.received == []
    # getUpdates answers in update_id order, which is the order the contact wrote in.
    assert [u.message.text for u in first] == ["0", "1", "2"]  # type: ignore[union-attr]
    assert [str(u.update_id) for u in first] == batch.json()["message_ids"]
    assert info.pending_update_count == 3
    assert [u.message.text for u in confirmed] == ["1", "2"]  # type: ignore[union-attr]
    assert empty == ()


async def test_failed_webhook_deliveries_show_in_webhook_info(fake, receiver):
    url, _ = fake
    receiver.statuses = [502] * POLICY.attempts
    async with bot(url) as client:
        await client.set_webhook(URL)
        answer = await control(url, "inbound", {"chat_id": 1, "text": "lost"})
        info = await client.get_webhook_info()

    assert [d["status"] for d in answer.json()["deliveries"]] == [502] * POLICY.attempts
    assert info.last_error_message
    assert info.last_error_date is not None
