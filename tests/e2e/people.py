"""A person at a browser: their own context (storage, cookies) and page, driven through the
screen as they would use it: labels and roles, not CSS internals, wherever the UI offers them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from uuid import uuid4

from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, ViewportSize, expect

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
WAIT_MS = 20_000  # how long a live change may take to show on a loaded 2-core machine
expect.set_options(timeout=WAIT_MS)


@dataclass
class Person:
    page: Page
    username: str
    errors: list[str] = field(default_factory=list)

    @classmethod
    def arrive(cls, browser: Browser, base_url: str, phone: bool = False) -> Person:
        size: ViewportSize = (
            {"width": 390, "height": 780} if phone else {"width": 1100, "height": 720}
        )
        context = browser.new_context(base_url=base_url, viewport=size)
        context.set_default_timeout(WAIT_MS)
        person = cls(context.new_page(), f"u{uuid4().hex[:10]}")
        person._watch()
        person.page.goto("/")
        return person

    def reopen(self) -> None:
        """Closes the tab and opens the same address in a new one (same browser storage)."""
        url = self.page.url
        self.page.close()
        self.page = self.page.context.new_page()
        self._watch()
        self.page.goto(url)

    def _watch(self) -> None:
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def register(self) -> Person:
        page = self.page
        page.get_by_role("tab", name="Register").click()
        page.get_by_label("Username").fill(self.username)
        page.get_by_label("Email").fill(f"{self.username}@example.com")
        page.get_by_label("Password").fill(f"password-{self.username}")
        page.get_by_role("button", name="Create account").click()
        expect(self.connection).to_have_text("online")
        return self

    @property
    def connection(self) -> Locator:
        return self.page.locator(".connection")

    def start_private(self, other: Person) -> None:
        self.page.get_by_role("link", name="New conversation").click()
        self.page.get_by_label("Username", exact=True).fill(other.username)
        self.page.get_by_role("button", name="Start").click()
        expect(self.page.get_by_role("heading", name=other.username)).to_be_visible()

    def open_conversation(self, title: str) -> None:
        self.page.get_by_role("link", name=title).first.click()
        expect(self.page.get_by_role("heading", name=title)).to_be_visible()

    def type(self, text: str) -> None:
        self.page.get_by_label("Message", exact=True).press_sequentially(text)

    def send(self, text: str) -> None:
        box = self.page.get_by_label("Message", exact=True)
        box.fill(text)
        box.press("Enter")

    def message(self, text: str) -> Locator:
        return self.page.locator("li.message", has_text=text)

    def delivered(self, text: str) -> Locator:
        """The message as accepted by the server (not waiting in the outbox)."""
        return self.page.locator("li.message:not(.pending)", has_text=text)

    def texts(self) -> list[str]:
        return self.page.locator("li.message .text").all_inner_texts()

    def status_line(self) -> Locator:
        return self.page.locator(".conversation-header .presence")

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=SCREENSHOTS / f"{name}.png")

    def leave(self) -> None:
        self.page.context.close()
