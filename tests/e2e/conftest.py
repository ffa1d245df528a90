"""Browser tests: Debian's Chromium (never a downloaded browser) driven by Playwright against a
real `chat4all up` serving the built client. Marked `browser`; when Chromium or the build is
missing they fail and say how to get it, as tests/servers.py does for the servers."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from tests.e2e.gateway import WEB_BUILD, Gateway

CHROMIUM = "/usr/bin/chromium"
# The flags ../shared/INFRA.md gives: headless, no sandbox as root, nothing phoning home.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.browser)
            # One at a time: two Chromiums and two gateways already fill 2 cores.
            item.add_marker(pytest.mark.xdist_group("browser"))


# Per test, not per session: the sync API runs an event loop in the thread while it is open,
# which would break the asyncio tests that an xdist worker runs after these.
@pytest.fixture
def playwright() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        raise AssertionError(f"{CHROMIUM} is missing; install it with scripts/infra/chromium.sh")
    if not (WEB_BUILD / "index.html").exists():
        raise AssertionError(f"the web client is not built in {WEB_BUILD}; run `make web`")
    with sync_playwright() as p:
        yield p


@pytest.fixture
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    gateway = Gateway(tmp_path / "data", tmp_path / "gateway.log")
    gateway.start()
    yield gateway
    gateway.stop()
