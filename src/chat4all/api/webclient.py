"""The Angular web client (`web/`), served at `/` from its build output, on the API's origin.

It is the router's fallback, not a route: it answers only requests no API route matched, so it
never shadows one (whenever that route was added), and a wrong method on an API path stays a
405. A GET for a built file gets that file; any other GET outside the API is a client route
(`/c/<id>`, `/settings`, ...) and gets `index.html`, so a reload or a shared link works. An
unknown `/v1/...` path stays a problem+json 404.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.types import Receive, Scope, Send

# Paths the page is never given for: what is not found there is an API 404.
API_PREFIXES = ("v1", "metrics", "healthz", "readyz", "docs", "redoc", "openapi.json")
# The build names its scripts and styles by content hash: they never change, browsers may keep
# them. Everything else (index.html above all, which names the bundles) is checked each time.
IMMUTABLE = "public, max-age=31536000, immutable"
HASHED = (".js", ".css")

NOT_BUILT = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Chat4All: web client not built</title></head><body style="font-family:sans-serif">
<h1>The web client is not built yet</h1>
<p>Build it once with <code>make web</code> (or <code>cd web &amp;&amp; npm ci &amp;&amp; npx ng build</code>),
then reload. Expected in <code>{web_dir}</code> (<code>CHAT4ALL_WEB_DIR</code>).</p>
<p>The API is up: see <a href="/docs">/docs</a>.</p></body></html>"""


def install(app: FastAPI, web_dir: Path) -> None:
    """Serve the client from `web_dir` for the requests no route of `app` matches."""
    root = web_dir.resolve()
    not_found = app.router.default

    async def fallback(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"].lstrip("/")
        page = None
        is_read = scope["type"] == "http" and scope["method"] in ("GET", "HEAD")
        if is_read and not path.startswith(API_PREFIXES):
            page = _page(root, web_dir, path)
        if page is None:
            await not_found(scope, receive, send)
        else:
            await page(scope, receive, send)

    app.router.default = fallback


def _page(root: Path, web_dir: Path, path: str) -> Response | None:
    """The response for a GET of `path`; None when it names a file the build lacks."""
    index = root / "index.html"
    if not index.is_file():
        return HTMLResponse(NOT_BUILT.format(web_dir=web_dir), status_code=503)
    file = (root / path).resolve()
    if path and file.is_relative_to(root) and file.is_file():
        cache = IMMUTABLE if file.suffix in HASHED else "no-cache"
        return FileResponse(file, headers={"Cache-Control": cache})
    if "." in path.rsplit("/", 1)[-1]:  # a missing file (an old bundle), not a client route
        return None
    return FileResponse(index, headers={"Cache-Control": "no-cache"})
