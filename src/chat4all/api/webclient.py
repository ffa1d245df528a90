"""The Angular web client (`web/`), served at `/` from its build output, on the API's origin.

A path naming a built file gets that file; any other path outside the API is a client route
(`/c/<id>`, `/settings`, ...) and gets `index.html`, so a reload or a shared link works. API
paths are never answered with the page: an unknown `/v1/...` stays a problem+json 404.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response

from chat4all.domain.errors import NotFound

# Paths the page must never shadow, even for routes registered after this one.
API_PREFIXES = ("v1/", "v1", "metrics", "healthz", "readyz", "docs", "redoc", "openapi.json")
# Built file names carry a content hash: they never change, so browsers may keep them.
IMMUTABLE = "public, max-age=31536000, immutable"

NOT_BUILT = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Chat4All: web client not built</title></head><body style="font-family:sans-serif">
<h1>The web client is not built yet</h1>
<p>Build it once with <code>make web</code> (or <code>cd web &amp;&amp; npm ci &amp;&amp; npx ng build</code>),
then reload. Expected in <code>{web_dir}</code> (<code>CHAT4ALL_WEB_DIR</code>).</p>
<p>The API is up: see <a href="/docs">/docs</a>.</p></body></html>"""


def install(app: FastAPI, web_dir: Path) -> None:
    """Serve the client from `web_dir`. Call last: the catch-all route must come after the
    API's routes."""
    root = web_dir.resolve()
    router = APIRouter(include_in_schema=False)

    @router.get("/{path:path}")
    async def web_client(path: str) -> Response:
        if path.startswith(API_PREFIXES):
            raise NotFound(f"no such resource: /{path}")
        index = root / "index.html"
        if not index.is_file():
            return HTMLResponse(NOT_BUILT.format(web_dir=web_dir), status_code=503)
        file = (root / path).resolve()
        if path and file.is_relative_to(root) and file.is_file():
            cache = "no-cache" if file == index else IMMUTABLE
            return FileResponse(file, headers={"Cache-Control": cache})
        if "." in path.rsplit("/", 1)[-1]:  # a missing file, not a client route
            raise NotFound(f"no such file: /{path}")
        # no-cache: a new build's index.html (naming new bundles) is seen at the next load.
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    app.include_router(router)
