"""
The terminal: one input line at the bottom, edited in raw mode, with every
incoming line printed above it; the input line is erased before and drawn
again after, so nothing that arrives garbles what is being typed.

Built on twisted.conch.insults, which turns the keyboard's escape sequences
into keys, over twisted.internet.stdio, as Twisted's own conch stdio does.
"""

import codecs
from collections.abc import Callable
from typing import Protocol

from twisted.conch.insults.insults import TerminalProtocol
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from chatroom.client.editor import LineEditor, display_width

PROMPT = "> "
# History lives only in memory, but a password should still not come back
# with the up arrow.
_CARRIES_PASSWORD = ("/p ", "/login ", "/register ")


class InputHandler(Protocol):
    """What the terminal tells about the person typing."""

    def line_entered(self, line: str) -> None: ...

    def input_ended(self, interrupted: bool) -> None:
        """Ctrl-D on an empty line, Ctrl-C (C{interrupted}), or no terminal."""


class Screen(Protocol):
    """Where lines are shown: a L{TerminalUI}, or a test's list."""

    def show(self, text: str) -> None: ...


class InputEnded(Exception):
    """The person ended input (Ctrl-D or Ctrl-C) while asked a question."""

    def __init__(self, interrupted: bool) -> None:
        super().__init__(interrupted)
        self.interrupted = interrupted


class TerminalUI(TerminalProtocol):
    """
    A line editor on the bottom row of the terminal: L{show} prints above
    it, L{ask} puts a question (its answer unechoed if secret), and other
    lines go to the L{InputHandler}.
    """

    def __init__(self, columns: Callable[[], int]) -> None:
        self._columns = columns
        self.editor = LineEditor()
        self.handler: InputHandler | None = None
        self.closed: Deferred[None] = Deferred()
        self._prompt = PROMPT
        self._secret = False
        self._question: Deferred[str] | None = None
        self._closing = False
        # Keys arrive byte by byte; UTF-8 is put back together here.
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def connectionMade(self) -> None:
        t = self.terminal
        editor = self.editor
        self._keys: dict[object, Callable[[], None]] = {
            b"\r": self._enter,
            b"\n": self._enter,
            t.BACKSPACE: editor.backspace,
            b"\x08": editor.backspace,
            t.DELETE: editor.delete,
            t.LEFT_ARROW: editor.left,
            t.RIGHT_ARROW: editor.right,
            t.HOME: editor.home,
            b"\x01": editor.home,
            t.END: editor.end,
            b"\x05": editor.end,
            b"\x15": editor.erase_to_start,
            b"\x0b": editor.erase_to_end,
            b"\x17": editor.erase_word,
            t.UP_ARROW: self._previous,
            t.DOWN_ARROW: self._next,
            b"\x04": self._end_of_file,
            b"\x03": lambda: self._end(interrupted=True),
        }
        self._draw_input()

    def keystrokeReceived(self, keyID: object, modifier: object) -> None:
        if modifier is not None:
            # Alt-combinations mean nothing here.
            return
        action = self._keys.get(keyID)
        if action is not None:
            action()
        elif isinstance(keyID, bytes) and keyID >= b" ":
            self.editor.insert(self._decoder.decode(keyID))
        else:
            return
        self._draw_input()

    def show(self, text: str) -> None:
        """Print a line (which may hold newlines) above the input line."""
        self._erase_input()
        # insults turns each newline into CRLF, as raw mode needs.
        self.terminal.write(text.encode("utf-8") + b"\n")
        self._draw_input()

    def ask(self, prompt: str, secret: bool = False) -> Deferred[str]:
        """
        Put a question; the result is the answer, or L{InputEnded}. A secret
        answer is not echoed, not even as stars, nor kept in the history.
        """
        self._question = Deferred()
        self._prompt, self._secret = prompt, secret
        self._draw_input()
        return self._question

    def close(self) -> Deferred[None]:
        """Let the terminal go once everything shown has been written."""
        self._closing = True
        self._erase_input()
        self.terminal.transport.loseConnection()
        return self.closed

    def connectionLost(self, reason: Failure) -> None:
        if not self._closing:
            self._end(interrupted=False)
        self.closed.callback(None)

    def _enter(self) -> None:
        question = self._question
        if question is None:
            remember = not self.editor.text.startswith(_CARRIES_PASSWORD)
            line = self.editor.submit(remember)
            if self.handler is not None:
                self.handler.line_entered(line)
            return
        line = self.editor.submit(remember=False)
        self.show(self._prompt + ("" if self._secret else line))
        self._question = None
        self._prompt, self._secret = PROMPT, False
        question.callback(line)

    def _previous(self) -> None:
        if self._question is None:
            self.editor.previous()

    def _next(self) -> None:
        if self._question is None:
            self.editor.next()

    def _end_of_file(self) -> None:
        if self.editor.text:
            self.editor.delete()
        else:
            self._end(interrupted=False)

    def _end(self, interrupted: bool) -> None:
        question, self._question = self._question, None
        if question is not None:
            self._prompt, self._secret = PROMPT, False
            question.errback(InputEnded(interrupted))
        elif self.handler is not None:
            self.handler.input_ended(interrupted)

    def _erase_input(self) -> None:
        self.terminal.write(b"\r")
        self.terminal.eraseToLineEnd()

    def _draw_input(self) -> None:
        if self._closing:
            return
        prompt_width = display_width(self._prompt)
        if self._secret:
            text, cursor = "", 0
        else:
            text, cursor = self.editor.view(max(self._columns() - prompt_width, 2))
        self._erase_input()
        self.terminal.write((self._prompt + text).encode("utf-8") + b"\r")
        if prompt_width + cursor:
            self.terminal.cursorForward(prompt_width + cursor)
