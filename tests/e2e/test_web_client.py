"""Two people, two browsers, one real `chat4all up`: the web client's whole walk."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from playwright.sync_api import Browser, Error, Route, expect

from tests.e2e.gateway import Gateway
from tests.e2e.people import Person


def test_two_people_chat_with_receipts_typing_and_presence(browser: Browser, gateway: Gateway):
    alice = Person.arrive(browser, gateway.url)
    alice.screenshot("signin")
    alice.register()
    bob = Person.arrive(browser, gateway.url).register()

    alice.start_private(bob)
    alice.send("Hi Bob!")
    # Bob's browser has it (his list shows it) but he has not opened the conversation.
    expect(
        bob.page.get_by_role("link", name=re.compile(f"{alice.username}, 1 unread"))
    ).to_be_visible()
    expect(alice.message("Hi Bob!")).to_have_attribute("data-status", "delivered")
    bob.screenshot("conversations")

    bob.open_conversation(alice.username)
    expect(alice.message("Hi Bob!")).to_have_attribute("data-status", "read")
    expect(bob.page.get_by_role("link", name=re.compile(f"^{alice.username}\\. "))).to_be_visible()

    expect(alice.status_line()).to_have_text("online")
    bob.type("Hello")
    expect(alice.status_line()).to_have_text(f"{bob.username} is typing…")
    bob.page.get_by_label("Message", exact=True).press("Enter")
    expect(alice.message("Hello")).to_be_visible()
    expect(bob.message("Hello")).to_have_attribute("data-status", "read")
    alice.send("How are you?")
    expect(bob.message("How are you?")).to_be_visible()
    assert alice.texts() == bob.texts() == ["Hi Bob!", "Hello", "How are you?"]

    # The per-channel status of a message.
    alice.message("Hi Bob!").get_by_role("button", name=re.compile("Show delivery details")).click()
    details = alice.page.get_by_role("dialog", name="Delivery details")
    expect(details.locator("tr[data-channel=internal] .status")).to_have_text("read")
    alice.screenshot("conversation")

    bob.leave()
    expect(alice.status_line()).to_contain_text("last seen")
    assert alice.errors == []


def test_history_scrolls_back_by_sequence_number(browser: Browser, gateway: Gateway):
    alice = Person.arrive(browser, gateway.url).register()
    bob = Person.arrive(browser, gateway.url).register()
    alice.start_private(bob)
    for n in range(1, 61):  # more than one page (50)
        alice.send(f"message {n}")
    expect(alice.delivered("message 60")).to_have_attribute("data-status", "delivered")

    bob.open_conversation(alice.username)
    expect(bob.message("message 60")).to_be_visible()
    bob.page.locator("ol.messages").evaluate("list => list.scrollTop = 0")
    expect(bob.page.locator('li.message[data-seq="1"]')).to_be_attached()
    assert bob.texts() == [f"message {n}" for n in range(1, 61)]
    assert bob.errors == alice.errors == []


def test_a_group_with_members_roles_and_receipts_per_member(browser: Browser, gateway: Gateway):
    alice = Person.arrive(browser, gateway.url).register()
    bob = Person.arrive(browser, gateway.url).register()
    carol = Person.arrive(browser, gateway.url, phone=True).register()

    alice.page.get_by_role("link", name="New conversation").click()
    alice.page.get_by_label("Group name").fill("Team")
    alice.page.get_by_label("Members (usernames").fill(bob.username)
    alice.page.get_by_role("button", name="Create group").click()
    alice.page.get_by_role("button", name=re.compile("Members")).click()
    members = alice.page.get_by_role("region", name="Members")
    members.get_by_label("Username to add").fill(carol.username)
    members.get_by_role("button", name="Add").click()
    expect(members.get_by_text(carol.username)).to_be_visible()
    members.get_by_label(f"Role of {bob.username}").select_option("admin")
    alice.page.get_by_role("button", name=re.compile("Members")).click()

    alice.send("Welcome to the team")
    bob.open_conversation("Team")
    expect(alice.message("Welcome")).to_contain_text(f"read by {bob.username}")
    carol.open_conversation("Team")
    expect(alice.message("Welcome")).to_have_attribute("data-status", "read")
    expect(carol.message("Welcome")).to_contain_text(alice.username)  # the sender's name
    carol.screenshot("phone")

    bob.page.get_by_role("button", name=re.compile("Members")).click()
    expect(bob.page.get_by_label(f"Role of {bob.username}")).to_have_count(0)  # not an owner
    expect(bob.page.get_by_role("region", name="Members").get_by_text("admin")).to_be_visible()
    alice.page.get_by_role("button", name=re.compile("Members")).click()
    alice.screenshot("group")
    assert alice.errors == bob.errors == carol.errors == []


def test_survives_a_forced_disconnect_without_losing_or_duplicating(
    browser: Browser, gateway: Gateway
):
    alice = Person.arrive(browser, gateway.url).register()
    bob = Person.arrive(browser, gateway.url).register()
    alice.start_private(bob)
    alice.send("before")
    bob.open_conversation(alice.username)
    expect(bob.message("before")).to_be_visible()

    gateway.kill()
    expect(alice.connection).not_to_have_text("online")
    expect(bob.connection).not_to_have_text("online")
    alice.send("while away 1")
    bob.send("while away 2")
    alice.send("while away 3")
    expect(alice.page.get_by_text("2 waiting to send")).to_be_visible()
    expect(alice.message("while away 3")).to_have_attribute("data-status", "queued")
    alice.page.close()  # what Alice typed is in her browser's storage, not in this tab

    gateway.start()  # same port, same data
    alice.reopen()
    expect(alice.connection).to_have_text("online")
    expect(bob.connection).to_have_text("online")
    alice.send("after")
    for person in (alice, bob):
        for text in ("before", "while away 1", "while away 2", "while away 3", "after"):
            expect(person.delivered(text)).to_have_count(1)
        assert person.page.locator("li.message.pending").count() == 0
        texts = person.texts()
        assert sorted(texts) == sorted(
            ["before", "while away 1", "while away 2", "while away 3", "after"]
        ), texts
        assert texts[0] == "before" and texts[-1] == "after", texts
        assert texts.index("while away 1") < texts.index("while away 3"), texts
    # Only the outage itself may show in the console (refused connections), nothing else.
    for person in (alice, bob):
        assert [e for e in person.errors if not _network_error(e)] == []


def test_tokens_are_refreshed_silently(browser: Browser, tmp_path: Path):
    gateway = Gateway(tmp_path / "data", tmp_path / "gateway.log", access_token_ttl_seconds="30")
    gateway.start()
    try:
        alice = Person.arrive(browser, gateway.url).register()
        bob = Person.arrive(browser, gateway.url).register()
        alice.start_private(bob)
        # Half-way through the token's 30 s life the client refreshes it on its own...
        with alice.page.expect_response("**/v1/auth/refresh", timeout=40_000) as refreshed:
            pass
        assert refreshed.value.status == 200
        # ... and goes on working past the first token's end.
        with alice.page.expect_response("**/v1/auth/refresh", timeout=40_000):
            pass
        alice.send("still signed in")
        expect(alice.delivered("still signed in")).to_have_attribute("data-status", "delivered")
        assert alice.errors == []
    finally:
        gateway.stop()


def _network_error(text: str) -> bool:
    return any(
        s in text for s in ("ERR_CONNECTION_REFUSED", "WebSocket connection", "Failed to load")
    )


def test_a_file_with_progress_pause_resume_and_download(
    browser: Browser, gateway: Gateway, tmp_path
):
    alice = Person.arrive(browser, gateway.url).register()
    bob = Person.arrive(browser, gateway.url).register()
    alice.start_private(bob)
    content = bytes(range(256)) * (24 * 4096)  # 24 MiB: three PATCHes of 8 MiB
    path = tmp_path / "report.bin"
    path.write_bytes(content)

    # Hold a part on its way (the second), so there is time to pause mid-upload.
    held: list[Route] = []

    def hold_second_part(route: Route) -> None:
        offset = int(route.request.headers.get("upload-offset", "0"))
        if route.request.method == "PATCH" and offset > 0 and not held:
            held.append(route)
        else:
            route.continue_()

    alice.page.route("**/v1/uploads/**", hold_second_part)
    alice.page.locator("input[type=file]").set_input_files(path)
    upload = alice.page.get_by_role("group", name="Upload of report.bin")
    expect(upload.get_by_role("button", name="Pause")).to_be_visible()
    expect(upload.locator(".percent")).not_to_have_text("0%")
    alice.screenshot("upload")
    upload.get_by_role("button", name="Pause").click()
    expect(upload.get_by_role("button", name="Resume")).to_be_visible()
    alice.page.unroute("**/v1/uploads/**")
    for route in held:
        with contextlib.suppress(Error):  # the page may have dropped the request already
            route.abort()
    upload.get_by_role("button", name="Resume").click()
    expect(upload).to_have_count(0)

    bob.open_conversation(alice.username)
    file_message = bob.message("report.bin")
    expect(file_message).to_be_visible()
    with bob.page.expect_download() as download:
        file_message.get_by_role("button", name="Download report.bin").click()
    assert download.value.path().read_bytes() == content
