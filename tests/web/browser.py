"""
A real Chromium (Debian's, /usr/bin/chromium) driven by Playwright's sync
API, for trial tests of the web page.

Playwright's sync API blocks, and must not run on the reactor's thread: a
L{BrowserThread} runs every call on one thread of its own (its objects
belong to the thread that made them) and hands back a Deferred, so the
reactor goes on serving the page while the browser waits on it.  Every
wait is on a DOM condition with a deadline (L{WAIT_MS}), never a sleep.

Without Chromium or Playwright the tests fail, saying what is missing: the
issue wants CI unable to pass without having run them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet import defer, reactor
from twisted.python.failure import Failure
from twisted.trial import unittest
from twisted.web import resource, server, static

CHROMIUM = Path("/usr/bin/chromium")
STATIC = Path(__file__).resolve().parents[2] / "chatroom/protocol/web/static"
# Every DOM condition a test waits on holds within this, or the test fails.
WAIT_MS = 15_000


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None if they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed: pip install -e '.[test]' brings it"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: apt-get install -y chromium"
    return None


def require_browser() -> None:
    """Fail (never skip) when Chromium or Playwright is missing."""
    why = missing_browser()
    if why is not None:
        raise AssertionError(f"the browser tests need a real browser: {why}")


class BrowserThread:
    """One Chromium, and the one thread that may touch it."""

    def __init__(self) -> None:
        self._calls: queue.Queue = queue.Queue()
        self._thread = threading.Thread(
            target=self._serve, name="playwright", daemon=True
        )
        self._thread.start()
        self._playwright = None
        self.browser = None

    def _serve(self) -> None:
        while (call := self._calls.get()) is not None:
            function, args, done = call
            try:
                result = function(*args)
            except BaseException:
                reactor.callFromThread(done.errback, Failure())
            else:
                reactor.callFromThread(done.callback, result)

    def call(self, function: Callable[..., Any], *args: Any) -> defer.Deferred:
        """Run C{function(*args)} on the browser's thread; fires with its result."""
        done: defer.Deferred = defer.Deferred()
        self._calls.put((function, args, done))
        return done

    def _launch(self) -> None:
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        self.browser = self._playwright.chromium.launch(executable_path=str(CHROMIUM))

    def _close(self) -> None:
        if self.browser is not None:
            self.browser.close()
        if self._playwright is not None:
            self._playwright.stop()

    async def start(self, testcase: unittest.TestCase) -> None:
        """Launch Chromium; closed, and the thread ended, when the test ends."""
        testcase.addCleanup(self.stop)
        await self.call(self._launch)

    async def stop(self) -> None:
        try:
            await self.call(self._close)
        finally:
            self._calls.put(None)

    async def page(
        self, url: str, width: int = 1100, height: int = 700, kind: type = None
    ) -> Page:
        """A new page (a L{Page}, or C{kind}) in a context of its own, at C{url}."""

        def open_page():
            size = {"width": width, "height": height}
            context = self.browser.new_context(viewport=size)
            context.set_default_timeout(WAIT_MS)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            # What the server's Content-Security-Policy refused, said on the console.
            page.on(
                "console",
                lambda m: "Content Security Policy" in m.text and errors.append(m.text),
            )
            page.goto(url)
            return page, errors

        return (kind or Page)(self, *await self.call(open_page))


class Page:
    """One browser page, each action run on the browser's thread."""

    def __init__(self, browser: BrowserThread, page: Any, errors: list[str]) -> None:
        self.browser = browser
        self.page = page
        self._errors = errors

    def run(self, function: Callable[..., Any], *args: Any) -> defer.Deferred:
        """C{function(page, *args)} on the browser's thread."""
        return self.browser.call(function, self.page, *args)

    def evaluate(self, script: str, argument: Any = None) -> defer.Deferred:
        return self.run(lambda page: page.evaluate(script, argument))

    def errors(self) -> list[str]:
        """The page's uncaught script errors and CSP refusals so far."""
        return list(self._errors)


def static_site() -> server.Site:
    """The page's files at /static/ and a blank page at /: for the modules alone."""
    root = resource.Resource()
    blank = static.Data(b"<!doctype html><title>modules</title>", "text/html")
    root.putChild(b"", blank)
    root.putChild(b"static", static.File(str(STATIC)))
    return server.Site(root)
