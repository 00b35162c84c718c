"""
One person's conversation over one connection: logging in, turning typed
lines into requests, showing what arrives, and deciding the exit status.
"""

from collections.abc import Coroutine
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from chatroom.client.e2e.messenger import HELP as E2E_HELP
from chatroom.client.e2e.messenger import E2eMessenger
from chatroom.client.lines import (
    E2eDelivery,
    Err,
    Ok,
    ServerLine,
    classify_outgoing,
    says_name_is_new,
)
from chatroom.client.protocol import ChatClientProtocol
from chatroom.client.render import Style
from chatroom.client.ui import InputEnded, TerminalUI

# Sent once logged in: live messages come with their time.
TIMESTAMPS_ON = "/set timestamps on"
EXIT_OK = 0
EXIT_CONNECTION_LOST = 1
# What a shell reports for a program stopped by Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130


class ChatSession:
    """
    Drives a connected L{ChatClientProtocol} from a L{TerminalUI}.

    Login uses the interactive form of the protocol: the bare name first,
    then the password, asked twice if the server's reply says the name is
    new. Passwords go to the server and nowhere else.
    """

    _log = Logger()

    def __init__(
        self,
        protocol: ChatClientProtocol,
        ui: TerminalUI,
        style: Style,
        name: str | None = None,
        e2e: E2eMessenger | None = None,
    ) -> None:
        self._protocol = protocol
        self._e2e = e2e
        self._ui = ui
        self._style = style
        self._name = name
        self._logged_in = False
        # While end-to-end encryption starts, the lines typed, in order.
        self._typed_early: list[str] | None = None
        # The exit status to report when the connection closes, once the
        # person has asked to leave; None means a close is unexpected.
        self._leaving: int | None = None
        self._finished: Deferred[int] = Deferred()

    def run(self) -> Deferred[int]:
        """Start; the result is the exit status once the session is over."""
        self._ui.handler = self
        self._protocol.closed.addCallback(self._connection_closed)
        self._protocol.deliver_events_to(self._server_line)
        self._spawn(self._log_in(self._name))
        return self._finished

    def line_entered(self, line: str) -> None:
        if not line.strip():
            return
        if not self._logged_in:
            self._ui.show(self._style.info("not logged in yet"))
        elif self._typed_early is not None:
            self._typed_early.append(line)
        elif line.strip() == "/p":
            self._spawn(self._change_password())
        elif self._e2e is not None and (work := self._e2e.command(line)) is not None:
            self._spawn(work)
        else:
            self._spawn(self._send(line))

    def input_ended(self, interrupted: bool) -> None:
        self._leave(EXIT_INTERRUPTED if interrupted else EXIT_OK)

    async def _log_in(self, name: str | None) -> None:
        while True:
            while not name:
                name = (await self._ui.ask("name: ")).strip()
            reply = await self._protocol.request(name)
            self._show_reply_text(reply.final)
            if isinstance(reply.final, Ok):
                if says_name_is_new(reply.final.text):
                    password = await self._new_password("choose a password: ")
                else:
                    password = await self._ui.ask("password: ", secret=True)
                reply = await self._protocol.request(password)
                self._show_reply_text(reply.final)
                if isinstance(reply.final, Ok):
                    self._logged_in = True
                    if self._e2e is not None:
                        # Lines typed from now on wait, so no /msg goes out
                        # before this device can seal it.
                        self._typed_early = []
                    # Messages then come with their time, shown beside them;
                    # a server without timestamps refuses, and nothing else
                    # changes.
                    await self._protocol.request(TIMESTAMPS_ON)
                    if self._e2e is not None:
                        await self._start_e2e(name)
                    return
            name = None

    async def _start_e2e(self, name: str) -> None:
        try:
            await self._e2e.start(name)
        finally:
            typed, self._typed_early = self._typed_early, None
            for line in typed:
                self.line_entered(line)

    async def _new_password(self, prompt: str) -> str:
        while True:
            password = await self._ui.ask(prompt, secret=True)
            if password == await self._ui.ask("the same again: ", secret=True):
                return password
            self._ui.show(self._style.warning("The two passwords differ; again."))

    async def _change_password(self) -> None:
        old = await self._ui.ask("old password: ", secret=True)
        new = await self._new_password("new password: ")
        # The interactive form: each password on a line of its own, taken
        # verbatim, so spaces anywhere in either are fine.
        for line in ("/p", old, new):
            reply = await self._protocol.request(line)
            if isinstance(reply.final, Err):
                break
        self._show_reply_text(reply.final)

    async def _send(self, line: str) -> None:
        if line.strip() == "/logout":
            self._leaving = EXIT_OK
        reply = await self._protocol.request(line)
        for data in reply.data:
            self._ui.show(self._style.server_line(data))
        message = classify_outgoing(line)
        if isinstance(reply.final, Ok) and message is not None:
            self._ui.show(self._style.sent(message))
        else:
            self._show_reply_text(reply.final)
        if isinstance(reply.final, Err) and line.strip() == "/logout":
            self._leaving = None
        if line.strip() == "/help" and self._e2e is not None:
            self._ui.show(self._style.info(E2E_HELP))

    def _show_reply_text(self, final: Ok | Err) -> None:
        if isinstance(final, Err) or final.text:
            self._ui.show(self._style.server_line(final))

    def _server_line(self, line: ServerLine) -> None:
        if self._e2e is None:
            self._ui.show(self._style.server_line(line))
        elif isinstance(line, E2eDelivery):
            self._e2e.receive(line)
        else:
            note = self._e2e.placeholder_note(line)
            self._ui.show(note or self._style.server_line(line))

    def _leave(self, status: int) -> None:
        self._leaving = status
        self._protocol.transport.loseConnection()

    def _connection_closed(self, reason: BaseException) -> None:
        if self._e2e is not None:
            self._e2e.stop()
        if self._leaving is None:
            if isinstance(reason, ConnectionDone):
                text = "The server closed the connection."
            else:
                text = f"Connection lost: {reason}"
            self._ui.show(self._style.warning(text))
            self._finished.callback(EXIT_CONNECTION_LOST)
        else:
            self._finished.callback(self._leaving)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        Deferred.fromCoroutine(work).addErrback(self._stopped)

    def _stopped(self, failure: Failure) -> None:
        if failure.check(InputEnded):
            self.input_ended(failure.value.interrupted)
        elif not self._protocol.closed.called:
            # A lost connection fails every waiting request; it is reported
            # once, by _connection_closed. Anything else is a bug.
            self._log.failure("session task failed", failure)
            self._ui.show(self._style.warning(f"Internal error: {failure.value!r}"))
