"""Whatever a client sends, every fake answers with its platform's error body, never a 500."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI

from fakes import instagram, messenger, telegram, whatsapp
from tests.platform_fakes.conftest import fake_client

BROKEN = [
    ("application/json", b"{not json"),
    ("application/json", b"[1, 2]"),
    ("application/json", b"\xff\xfe"),
    ("multipart/form-data; boundary=zzz", b"no parts here"),
    ("application/x-www-form-urlencoded", b"%%%=&&"),
]
FAKES: list[tuple[Callable[[], FastAPI], list[str], Callable[[dict[str, object]], bool]]] = [
    (
        whatsapp.create_app,
        ["/v21.0/1/messages", "/v21.0/1/media"],
        lambda body: body["error"]["code"] == 100,  # type: ignore[index]
    ),
    (
        telegram.create_app,
        ["/bot1:abc/sendMessage", "/bot1:abc/sendDocument"],
        lambda body: body["ok"] is False and body["error_code"] == 400,
    ),
    (
        messenger.create_app,
        ["/v21.0/me/messages"],
        lambda body: body["error"]["code"] == 100,  # type: ignore[index]
    ),
    (
        instagram.create_app,
        ["/v21.0/me/messages"],
        lambda body: body["error"]["code"] == 100,  # type: ignore[index]
    ),
]


@pytest.mark.parametrize(("create_app", "paths", "is_platform_error"), FAKES)
async def test_malformed_bodies_get_the_platform_error(create_app, paths, is_platform_error):
    async with fake_client(create_app()) as client:
        for path in paths:
            for content_type, content in BROKEN:
                answer = await client.post(
                    path,
                    content=content,
                    headers={"Content-Type": content_type, "Authorization": "Bearer t"},
                )
                assert answer.status_code == 400, (path, content_type, content, answer.text)
                assert is_platform_error(answer.json()), answer.text
        calls = (await client.get("/_control/calls")).json()
    assert len(calls) == len(paths) * len(BROKEN)  # recorded all the same
