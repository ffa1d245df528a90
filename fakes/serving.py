"""Serving the fakes over HTTP: `chat4all fakes up`, and tests whose client library needs a URL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Literal

import uvicorn
from fastapi import FastAPI

from fakes import instagram, messenger, telegram, whatsapp

# In the order of their ports from --port-base.
FAKES: tuple[tuple[str, Callable[[], FastAPI]], ...] = (
    ("WhatsApp Cloud API", whatsapp.create_app),
    ("Telegram Bot API", telegram.create_app),
    ("Messenger Send API", messenger.create_app),
    ("Instagram Messaging", instagram.create_app),
)


@asynccontextmanager
async def serving(
    app: FastAPI,
    host: str = "127.0.0.1",
    port: int = 0,
    lifespan: Literal["on", "off"] = "off",
) -> AsyncIterator[str]:
    """Serves `app` on host:port in the running loop; yields its base URL once it listens.
    (Chat4All's own test server uses it too, with its lifespan on.)

    Port 0 lets the OS pick a free one (no race with another test taking it)."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan=lifespan)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():  # it could not start (port taken): say why
            task.result()
            raise RuntimeError(f"the server on {host}:{port} stopped while starting")
        await asyncio.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        await task


async def serve_all(host: str, port_base: int, announce: Callable[[str], None]) -> None:
    """Every fake on its own port, from `port_base` on, until the process is stopped."""
    async with AsyncExitStack() as stack:
        for offset, (name, create_app) in enumerate(FAKES):
            url = await stack.enter_async_context(serving(create_app(), host, port_base + offset))
            announce(f"{name:<22} {url}   (control: {url}/_control/docs)")
        await asyncio.Event().wait()
