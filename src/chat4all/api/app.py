"""The FastAPI application: REST, the stream, problem+json errors."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from chat4all import __version__
from chat4all.api import problems, webclient, ws
from chat4all.api.instrument import Instrumented
from chat4all.api.limits import BodyLimit
from chat4all.api.rest import (
    auth,
    channels,
    conversations,
    files,
    messages,
    ops,
    uploads,
    users,
    webhooks,
)
from chat4all.api.rest.deps import document_bearer_auth
from chat4all.api.tus import UPLOADS_PATH, TusHeaders
from chat4all.bootstrap import Platform

DESCRIPTION = """One API to send and receive messages in private and group conversations,
with per-recipient statuses (sent, delivered, read, failed) and a real-time stream at
`/v1/stream` (WebSocket). Errors are RFC 9457 `application/problem+json`."""


def create_app(
    platform_factory: Callable[[], Awaitable[Platform]],
    max_body_size: int = 1 << 20,
    *,
    admin_token: str | None = None,
    web_dir: Path | None = None,
) -> FastAPI:
    """The app; `platform_factory` builds the wired platform when the server starts. Request
    bodies over `max_body_size` bytes are refused with a 413 before they are read whole. With
    `web_dir`, the web client's build output is served at `/`; without, `/` shows the docs."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        platform = await platform_factory()
        app.state.platform = platform
        await platform.start()
        # What exists now lives as long as the process: keep it out of every future collection.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await platform.stop()

    app = FastAPI(
        title="Chat4All",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.admin_token = admin_token  # the operators' API (dead letters); None: off
    problems.install(app)
    # tus chunks stream to storage: their size is bounded by the upload's length instead.
    app.add_middleware(BodyLimit, max_body_size=max_body_size, unlimited_prefix=UPLOADS_PATH)
    app.add_middleware(TusHeaders)
    app.add_middleware(Instrumented)  # outermost: it times everything, 413s included
    # Routers are matched in this order, one route at a time: the hottest go first.
    routers = [
        m.router
        for m in (messages, conversations, users, auth, channels, uploads, files, webhooks, ops)
    ]
    for router in routers:
        app.include_router(router)
    app.include_router(ws.router)
    document_bearer_auth(app, routers)

    if web_dir is None:

        @app.get("/", include_in_schema=False)
        async def root() -> RedirectResponse:
            return RedirectResponse("/docs")

    else:
        webclient.install(app, web_dir)
    return app
