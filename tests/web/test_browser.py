"""
The page end to end: the real server (line port and web port) in this
process, real Chromium pages and telnet-style line clients in the same
rooms.  Each step waits on what the page shows, with a deadline.
"""

from __future__ import annotations

from pathlib import Path

from twisted.trial import unittest
from twisted.web.server import Site

from tests.asynctest import async_test
from tests.clients import NetClient, connect, log_in
from tests.realserver import LOOPBACK, RunningServer
from tests.web.browser import BrowserThread, require_browser
from tests.web.chatpage import PENDING, ChatPage, expect

INJECTION = "<img src=x onerror=alert(1)>"


def on_port(port: int | None) -> str:
    """An endpoint on 127.0.0.1: the port given, or any free one."""
    return LOOPBACK if port is None else f"tcp:{port}:interface=127.0.0.1"


class WebChat:
    """
    The whole server with a web port, which may be stopped and started
    again on the same ports and data, as a restart would.
    """

    def __init__(self, testcase: unittest.TestCase) -> None:
        self.testcase = testcase
        self.data_dir = Path(testcase.mktemp())
        self.line_port: int | None = None
        self.web_port: int | None = None
        self.running: RunningServer | None = None

    async def start(self) -> None:
        options = (
            "--port",
            on_port(self.line_port),
            "--web-port",
            on_port(self.web_port),
        )
        self.running = RunningServer(self.testcase, self.data_dir, options)
        await self.running.start()
        ports = self.running.server.ports
        self.line_port = ports[0].getHost().port
        self.web_port = (
            next(p for p in ports if isinstance(p.factory, Site)).getHost().port
        )

    async def stop(self) -> None:
        await self.running.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}/"

    async def line_client(self, name: str) -> NetClient:
        """A telnet-style user, registered as C{name}."""
        client = await connect(self.line_port)
        self.running.clients.append(client)
        return await log_in(client, name, "pw")


class BrowserTestCase(unittest.TestCase):
    timeout = 120

    @async_test
    async def setUp(self):
        require_browser()
        self.chat = WebChat(self)
        await self.chat.start()
        # Cleanups run last first: the browser closes before the server stops.
        self.browser = BrowserThread()
        await self.browser.start(self)
        self.pages: list[ChatPage] = []
        self.addCleanup(self.no_script_errors)

    def no_script_errors(self) -> None:
        for page in self.pages:
            self.assertEqual(page.errors(), [])

    async def page(self, name: str | None = None, **size: int) -> ChatPage:
        """A new page at the server's web port, logged in as C{name} if given."""
        page = await self.browser.page(self.chat.url, kind=ChatPage, **size)
        self.pages.append(page)
        if name is not None:
            await page.log_in(name)
        return page


class RoomTests(BrowserTestCase):
    @async_test
    async def test_two_pages_and_a_line_client_hear_each_other_in_one_room(self):
        alice, bob = await self.page("alice"), await self.page("bob")
        carol = await self.chat.line_client("carol")

        await alice.say("hello from a browser")
        await bob.sees("hello from a browser")
        self.assertEqual(
            await carol.wait_for("hello from a browser"),
            "[lobby] alice: hello from a browser",
        )

        # Rows already shown stay as they are: only the new one is added.
        mark = "document.querySelector('#messages .item').dataset.mark = 'kept'"
        await alice.evaluate(f"() => {{ {mark} }}")
        await carol.ok("hello from telnet")
        for page in (alice, bob):
            shown = await page.sees("hello from telnet")
            self.assertIn("carol", shown)
        kept = await alice.evaluate(
            "() => document.querySelector('#messages .item').dataset.mark"
        )
        self.assertEqual(kept, "kept")

        await bob.type("/me waves")
        self.assertIn("* bob", await alice.sees("waves"))
        self.assertEqual(await carol.wait_for("waves"), "[lobby] * bob waves")

    @async_test
    async def test_history_is_shown_after_login_and_older_lines_on_scroll_back(self):
        carol = await self.chat.line_client("carol")
        for n in range(1, 61):
            await carol.ok(f"number {n:02}")
        alice = await self.page("alice")
        # The page asks for the last 50 first.
        shown = await alice.sees("number 60")
        self.assertRegex(shown, r"^\d\d:\d\d carol")
        await alice.sees("number 11")
        self.assertEqual(await alice.count("number 10"), 0)

        # Scrolled to the top (Home, from the keyboard), the older ten come first.
        await alice.run(lambda page: page.focus("#messages"))
        await alice.run(lambda page: page.keyboard.press("Home"))
        await alice.sees("number 01")
        texts = await alice.run(
            lambda page: page.locator("#messages .message .text").all_inner_texts()
        )
        self.assertEqual(texts, [f"number {n:02}" for n in range(1, 61)])

    @async_test
    async def test_rooms_are_created_joined_and_left_with_unread_counts(self):
        alice, bob = await self.page("alice"), await self.page("bob")
        carol = await self.chat.line_client("carol")

        await alice.run(lambda page: page.fill("#create-name", "dev"))
        await alice.run(lambda page: page.press("#create-name", "Enter"))
        await alice.shows("#conversation-title", "#dev")
        # Any /command goes as typed.
        await bob.type("/j dev")
        await bob.shows("#joined-rooms", "#dev")
        await carol.ok("/j dev")

        await alice.open("#lobby")
        await carol.ok("/public dev news for dev")
        await carol.ok("/public dev more news")
        await alice.unread("#dev", 2)
        await alice.open("#dev")
        await alice.sees("more news")
        await alice.unread("#dev", 0)
        # /me acts in the room shown, though lobby is alice's default room.
        await alice.type("/me reads the news")
        self.assertEqual(
            await carol.wait_for("reads the news"), "[dev] * alice reads the news"
        )

        await bob.open("#dev")
        await alice.type("/kick dev bob")
        await alice.sees("OK kicked bob from #dev")
        self.assertIn("alice kicked bob", await carol.wait_for("kicked bob"))
        await bob.sees("you are no longer in #dev")
        await bob.shows("#conversation-title", "#lobby")

        # The public list offers it: a click joins again, Leave leaves.
        await bob.run(lambda page: page.click("#public-rooms button[data-room='dev']"))
        await bob.shows("#conversation-title", "#dev")
        await bob.run(lambda page: page.click("#leave-button"))
        await bob.run(
            lambda page: expect(page.locator("#joined-rooms")).not_to_contain_text(
                "#dev"
            )
        )
        await alice.sees("bob left #dev")


class PrivateTests(BrowserTestCase):
    @async_test
    async def test_private_messages_between_pages_and_a_line_client(self):
        alice, bob = await self.page("alice"), await self.page("bob")
        carol = await self.chat.line_client("carol")

        await alice.run(lambda page: page.fill("#private-name", "bob"))
        await alice.run(lambda page: page.press("#private-name", "Enter"))
        await alice.shows("#conversation-title", "private: bob")
        await alice.say("just between us")
        await bob.unread("@alice", 1)
        await bob.open("@alice")
        await bob.sees("just between us")

        await carol.ok("/private alice psst from telnet")
        await alice.unread("@carol", 1)
        await bob.type("/private carol a reply typed as a command")
        self.assertEqual(
            await carol.wait_for("a reply typed"),
            "[private] bob: a reply typed as a command",
        )
        await bob.shows("#conversation-title", "private: carol")
        # Nobody else sees it.
        await alice.open("@carol")
        await alice.sees("psst from telnet")
        self.assertEqual(await alice.count("a reply typed"), 0)

        # One to yourself comes back to the sender: shown once.
        await bob.type("/private bob a note to self")
        await bob.shows("#conversation-title", "private: bob")
        # Acknowledged, so its echo (delivered before the +OK) has come.
        await bob.run(
            lambda page: expect(
                page.locator("#messages .item").filter(has_text="a note to self")
            ).not_to_have_class(PENDING)
        )
        await carol.ok("/private bob after the note")
        await bob.unread("@carol", 1)
        self.assertEqual(await bob.count("a note to self"), 1)


class SafetyTests(BrowserTestCase):
    @async_test
    async def test_html_in_a_message_is_shown_as_text(self):
        alice, bob = await self.page("alice"), await self.page("bob")
        carol = await self.chat.line_client("carol")
        dialogs: list[str] = []

        def dismissed(dialog):
            dialogs.append(dialog.message)
            dialog.dismiss()

        for page in (alice, bob):
            await page.run(lambda p: p.on("dialog", dismissed))

        await carol.ok(f"look {INJECTION} here")
        await alice.say(f"mine {INJECTION} too")
        for page in (alice, bob):
            self.assertIn(f"look {INJECTION} here", await page.sees("look"))
        self.assertIn(f"mine {INJECTION} too", await bob.sees("mine"))
        for page in (alice, bob):
            images = await page.run(lambda p: p.locator("img").count())
            self.assertEqual(images, 0)
        self.assertEqual(dialogs, [])

    @async_test
    async def test_links_open_apart_and_the_password_is_kept_nowhere(self):
        alice, bob = await self.page(), await self.page("bob")
        await alice.log_in("alice", "s3cret words")
        await alice.say("see https://example.org/page and javascript:alert(1)")
        await bob.sees("see https://example.org/page")
        links = await bob.run(
            lambda page: page.eval_on_selector_all(
                "#messages a", "as => as.map((a) => [a.href, a.rel, a.target])"
            )
        )
        self.assertEqual(
            links, [["https://example.org/page", "noopener noreferrer", "_blank"]]
        )
        kept = await alice.evaluate(
            """() => [localStorage.length, sessionStorage.length, document.cookie,
                document.getElementById("login-password").value,
                document.documentElement.outerHTML.includes("s3cret")]"""
        )
        self.assertEqual(kept, [0, 0, "", "", False])


class ReconnectTests(BrowserTestCase):
    @async_test
    async def test_a_server_restart_is_shown_and_the_page_logs_in_again(self):
        alice = await self.page("alice")
        await alice.say("before the restart")

        await self.chat.stop()
        await alice.shows("#banner", "reconnecting…")
        await alice.shows("#banner", "server unreachable")

        await self.chat.start()
        await alice.run(lambda page: expect(page.locator("#banner")).to_be_hidden())
        await alice.sees("reconnected")
        carol = await self.chat.line_client("carol")
        await alice.say("after the restart")
        self.assertEqual(
            await carol.wait_for("after the restart"),
            "[lobby] alice: after the restart",
        )
        await carol.ok("welcome back")
        await alice.sees("welcome back")
        # Once, though history brought it back too.
        self.assertEqual(await alice.count("before the restart"), 1)

    @async_test
    async def test_a_login_while_the_server_is_down_says_so(self):
        alice = await self.page()
        await self.chat.stop()
        await alice.run(lambda page: page.fill("#login-name", "alice"))
        await alice.run(lambda page: page.fill("#login-password", "pw"))
        await alice.run(lambda page: page.click("#login-button"))
        await alice.shows("#login-error", "the server is unreachable")

    @async_test
    async def test_log_out_ends_the_session(self):
        alice = await self.page("alice")
        carol = await self.chat.line_client("carol")
        await alice.run(lambda page: page.click("#logout"))
        await alice.run(
            lambda page: expect(page.locator("#login-form")).to_be_visible()
        )
        for _ in range(100):
            if "alice (online)" not in await carol.ok("/who lobby"):
                break
        self.assertNotIn("alice (online)", await carol.ok("/who lobby"))


class UsabilityTests(BrowserTestCase):
    @async_test
    async def test_the_page_works_from_the_keyboard_alone(self):
        carol = await self.chat.line_client("carol")
        await carol.ok("/c dev")
        alice = await self.page()

        def log_in_by_keyboard(page):
            page.focus("#login-name")
            page.keyboard.type("alice")
            page.keyboard.press("Tab")
            page.keyboard.type("pw")
            page.keyboard.press("Tab")  # Log in
            page.keyboard.press("Tab")  # Register
            page.keyboard.press("Enter")
            expect(page.locator("#input")).to_be_focused()
            page.keyboard.type("typed, then Enter")
            page.keyboard.press("Enter")

        await alice.run(log_in_by_keyboard)
        self.assertEqual(
            await carol.wait_for("typed, then"), "[lobby] alice: typed, then Enter"
        )

        def join_by_keyboard(page):
            # Tab from the input reaches every control; Enter on #dev joins it.
            for _ in range(40):
                page.keyboard.press("Shift+Tab")
                if page.evaluate("document.activeElement.dataset.room") == "dev":
                    break

        def focus_stays(page):
            # The sidebar is drawn again for a message; the focus stays put.
            expect(page.locator("#messages")).to_contain_text("look around")
            return page.evaluate("document.activeElement.dataset.room")

        def join_with_enter(page):
            page.keyboard.press("Enter")
            expect(page.locator("#conversation-title")).to_have_text("#dev")
            expect(page.locator("#input")).to_be_focused()
            outline = page.evaluate(
                "getComputedStyle(document.activeElement).outlineStyle"
            )
            return outline

        await alice.run(join_by_keyboard)
        await carol.ok("/public lobby while you look around")
        self.assertEqual(await alice.run(focus_stays), "dev")
        self.assertNotEqual(await alice.run(join_with_enter), "none")
        await carol.wait_for("alice joined #dev")

    @async_test
    async def test_a_phone_sized_screen_shows_one_column_and_a_menu(self):
        alice = await self.page("alice", width=375, height=667)

        def layout(page):
            expect(page.locator("#sidebar")).to_be_hidden()
            page.click("#menu-toggle")
            expect(page.locator("#sidebar")).to_be_visible()
            page.click("#sidebar button.conversation[data-key='#lobby']")
            expect(page.locator("#sidebar")).to_be_hidden()
            page.click("#menu-toggle")
            page.click("#menu-close")
            expect(page.locator("#sidebar")).to_be_hidden()
            return page.evaluate("document.documentElement.scrollWidth")

        self.assertLessEqual(await alice.run(layout), 375)
        await alice.say("from a phone")
