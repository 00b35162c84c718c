"""
The chat page as a test uses it: one L{ChatPage} per browser page, each
method a user's step (log in, say, open a room) or a wait on what the page
shows, run on the browser's thread (L{tests.web.browser}).  Selectors are
the ids and classes of chatroom/protocol/web/static/index.html and view.js.
"""

from __future__ import annotations

import re
from typing import Any

from tests.web.browser import WAIT_MS, Page

PENDING = re.compile(r"\bpending\b")


def expect(target: Any) -> Any:
    """Playwright's expect, imported only once a browser runs."""
    from playwright.sync_api import expect as playwright_expect

    playwright_expect.set_options(timeout=WAIT_MS)
    return playwright_expect(target)


def _messages(page: Any, text: str) -> Any:
    return page.locator("#messages .item").filter(has_text=text)


def _log_in(page: Any, name: str, password: str, register: bool) -> None:
    page.fill("#login-name", name)
    page.fill("#login-password", password)
    page.click("#register-button" if register else "#login-button")
    expect(page.locator("#chat")).to_be_visible()
    expect(page.locator("#joined-rooms")).to_contain_text("#lobby")


def _type(page: Any, text: str) -> None:
    page.fill("#input", text)
    page.press("#input", "Enter")
    expect(page.locator("#input")).to_have_value("")


def _say(page: Any, text: str) -> None:
    _type(page, text)
    sent = _messages(page, text).last
    expect(sent).to_be_visible()
    expect(sent).not_to_have_class(PENDING)
    expect(sent).not_to_contain_text("not sent")


def _open(page: Any, key: str) -> None:
    page.click(f"#sidebar button.conversation[data-key='{key}']")
    expect(page.locator("#sidebar [aria-current='true']")).to_have_attribute(
        "data-key", key
    )


def _sees(page: Any, text: str) -> str:
    found = _messages(page, text).last
    expect(found).to_be_visible()
    return found.inner_text()


def _count(page: Any, text: str) -> int:
    return _messages(page, text).count()


def _unread(page: Any, key: str, count: int) -> None:
    button = page.locator(f"#sidebar button.conversation[data-key='{key}']")
    if count:
        expect(button.locator(".unread")).to_have_text(f"{count} unread")
    else:
        expect(button.locator(".unread")).to_have_count(0)


class ChatPage(Page):
    """One user's page, driven from the reactor's thread."""

    def log_in(self, name: str, password: str = "pw", register: bool = True):
        """Register (or log in) through the form; fires once the rooms show."""
        return self.run(_log_in, name, password, register)

    def type(self, text: str):
        """Type a line in the input and press Enter."""
        return self.run(_type, text)

    def say(self, text: str):
        """Send a message in the conversation shown; fires once it is acknowledged."""
        return self.run(_say, text)

    def open(self, key: str):
        """Click a conversation in the sidebar: C{#room} or C{@user}."""
        return self.run(_open, key)

    def sees(self, text: str):
        """Fires with the shown item containing C{text}, once there is one."""
        return self.run(_sees, text)

    def count(self, text: str):
        """Fires with how many shown items contain C{text} now."""
        return self.run(_count, text)

    def unread(self, key: str, count: int):
        """Fires once the sidebar shows C{count} unread on C{key}."""
        return self.run(_unread, key, count)

    def shows(self, selector: str, text: str):
        """Fires once C{selector} contains C{text}."""
        return self.run(
            lambda page: expect(page.locator(selector)).to_contain_text(text)
        )
