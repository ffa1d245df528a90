"""The gateway serves the web client's build output at `/`, never in place of the API."""

from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import httpx
import pytest

from tests.integration.harness import register, running_server, settings_for_tests

INDEX = '<!doctype html><html><body><app-root></app-root><script src="main-ABC.js"></script>'


async def _client(tmp_path: Path, web_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_for_tests(tmp_path / "data", web_dir=web_dir)
    async with (
        running_server(settings) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        yield client


@pytest.fixture
async def built(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    web = tmp_path / "browser"
    web.mkdir()
    (web / "index.html").write_text(INDEX)
    (web / "main-ABC.js").write_text("console.log('client')")
    (tmp_path / "secret.txt").write_text("outside the build")
    async for client in _client(tmp_path, web):
        yield client


@pytest.fixture
async def not_built(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(tmp_path, tmp_path / "missing"):
        yield client


async def test_index_files_and_client_routes(built: httpx.AsyncClient):
    root = await built.get("/")
    assert root.status_code == 200 and root.text == INDEX
    assert root.headers["cache-control"] == "no-cache"
    bundle = await built.get("/main-ABC.js")
    assert bundle.text == "console.log('client')"
    assert "immutable" in bundle.headers["cache-control"]
    # A client route (a reload on /c/<id>) gets the page, which routes itself.
    route = await built.get(f"/c/{uuid4()}")
    assert route.status_code == 200 and route.text == INDEX


async def test_the_api_is_never_shadowed(built: httpx.AsyncClient):
    assert (await built.get("/healthz")).json() == {"status": "ok"}
    for path in ("/v1/nothing-here", "/metrics-not", "/openapi.json/x"):
        r = await built.get(path)
        assert r.status_code == 404, path
        assert r.headers["content-type"] == "application/problem+json", path
    assert (await built.get("/openapi.json")).json()["info"]["title"] == "Chat4All"
    # Other methods are the API's: an unknown path is a 404, a known one with a wrong method a 405.
    assert (await built.post("/v1/nothing-here")).status_code == 404
    assert (await built.post(f"/c/{uuid4()}")).status_code == 404
    assert (await built.delete("/v1/conversations")).status_code == 405


async def test_missing_files_and_escapes_are_404(built: httpx.AsyncClient):
    assert (await built.get("/main-OLD.js")).status_code == 404
    escape = await built.get("/%2e%2e/secret.txt")
    assert escape.status_code == 404
    assert "outside the build" not in escape.text


async def test_without_a_build_the_page_says_how_to_build(not_built: httpx.AsyncClient):
    r = await not_built.get("/")
    assert r.status_code == 503
    assert "make web" in r.text
    assert (await not_built.get("/healthz")).status_code == 200


async def test_a_user_is_named_by_id(http: httpx.AsyncClient):
    alice, bob = await register(http), await register(http)
    r = await alice.get(f"/v1/users/{bob.user_id}")
    assert r.status_code == 200
    assert r.json()["username"] == bob.username
    assert r.json()["email"] is None  # only the name is shown
    missing = await alice.get(f"/v1/users/{uuid4()}")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert (await alice.get("/v1/users/me")).json()["username"] == alice.username
