"""
What reaches the screen: every server line made harmless by L{sanitize} and
styled by kind, in colour only where the terminal wants it.
"""

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from chatroom.client.lines import (
    Data,
    E2eDelivery,
    Err,
    Notice,
    Ok,
    PrivateMessage,
    RoomMessage,
    SentMessage,
    ServerLine,
    Timestamped,
    Unrecognised,
)

# Bidirectional controls can make text display in an order other than the
# one it was sent in ("Trojan Source"); line and paragraph separators can
# start a new line on some terminals.
_INVISIBLE_FORMATTING = (
    [0x061C, 0x200E, 0x200F, 0x2028, 0x2029]
    + list(range(0x202A, 0x202F))
    + list(range(0x2066, 0x206A))
)

_VISIBLE: dict[int, str] = {code: f"^{chr(code + 0x40)}" for code in range(0x20)}
del _VISIBLE[ord("\t")]
_VISIBLE[0x7F] = "^?"
_VISIBLE.update({code: f"\\x{code:02x}" for code in range(0x80, 0xA0)})
_VISIBLE.update({code: f"<U+{code:04X}>" for code in _INVISIBLE_FORMATTING})
# The locks (LOCK and its look-alikes): only this client may put one on a
# line, beside a message it opened and checked, so that a server cannot
# forge a sealed-looking line ("07:04 🔒 [private] alice: ...") as text.
_VISIBLE.update({code: f"<U+{code:04X}>" for code in (0x1F50F, 0x1F510, 0x1F512)})


def sanitize(text: str) -> str:
    """
    Make every control character visible so that no text from the network
    can drive the terminal: C0 controls but TAB as C{^X} (ESC as C{^[}, so
    CSI and OSC sequences print as text), DEL as C{^?}, C1 as C{\\x9b}, and
    bidi controls and line separators as C{<U+202E>}; and the lock that
    marks a checked end-to-end message as C{<U+1F512>}.
    """
    return text.translate(_VISIBLE)


BOLD = "1"
# What marks a message that came, or went, end-to-end encrypted.
LOCK = "🔒"
RED, GREEN, YELLOW, BLUE, MAGENTA, CYAN = "31", "32", "33", "34", "35", "36"


def use_colour(is_terminal: bool, environ: Mapping[str, str]) -> bool:
    """Colour for a terminal, unless NO_COLOR is set non-empty or TERM=dumb."""
    return (
        is_terminal
        and not environ.get("NO_COLOR")
        and environ.get("TERM", "") != "dumb"
    )


@dataclass(frozen=True)
class Style:
    """Turns lines into display text, with ANSI colour if C{colour}."""

    colour: bool
    # How a message's time is shown: the person's own time of day.
    local_time: Callable[[float], time.struct_time] = time.localtime

    def paint(self, text: str, *attributes: str) -> str:
        if not self.colour:
            return text
        return f"\x1b[{';'.join(attributes)}m{text}\x1b[0m"

    def server_line(self, line: ServerLine) -> str:
        """One line from the server, sanitized and styled by its kind."""
        match line:
            case Timestamped(at, message):
                shown = time.strftime("%H:%M", self.local_time(at))
                return f"{self.paint(shown, BLUE)} {self.server_line(message)}"
            case RoomMessage(room, sender, text, True):
                return (
                    f"{self.paint(f'[{sanitize(room)}]', CYAN)} "
                    f"* {self.paint(sanitize(sender), BOLD)} {sanitize(text)}"
                )
            case RoomMessage(room, sender, text):
                return (
                    f"{self.paint(f'[{sanitize(room)}]', CYAN)} "
                    f"{self.paint(sanitize(sender), BOLD)}: {sanitize(text)}"
                )
            case PrivateMessage(sender, text, True):
                return (
                    f"{self.paint('[private]', MAGENTA, BOLD)} "
                    f"* {self.paint(sanitize(sender), MAGENTA, BOLD)} {sanitize(text)}"
                )
            case PrivateMessage(sender, text):
                return (
                    f"{self.paint('[private]', MAGENTA, BOLD)} "
                    f"{self.paint(sanitize(sender), MAGENTA, BOLD)}: {sanitize(text)}"
                )
            case Notice(text):
                return self.paint(f"* {sanitize(text)}", YELLOW)
            case Err(code, text):
                return self.paint(f"error {sanitize(code)}: {sanitize(text)}", RED)
            case Ok(text):
                return self.paint(sanitize(text), GREEN)
            case Data(text):
                return f"  {sanitize(text)}"
            case E2eDelivery(sender=sender):
                return self.info(
                    f"an end-to-end encrypted message from {sender}, "
                    "which this session cannot read"
                )
            case Unrecognised(text):
                return sanitize(text)

    def sent(self, message: SentMessage) -> str:
        """The user's own message, shown once the server confirmed it."""
        if message.target is None:
            where = ""
        elif message.private:
            where = self.paint(f"[private to {sanitize(message.target)}]", MAGENTA)
            where += " "
        else:
            where = self.paint(f"[{sanitize(message.target)}]", CYAN) + " "
        mark = self.paint("✓", GREEN)
        if message.action:
            return f"{mark} {where}* {self.paint('you', BOLD)} {sanitize(message.text)}"
        return f"{mark} {where}{self.paint('you', BOLD)}: {sanitize(message.text)}"

    def sealed_sent(self, peer: str, text: str) -> str:
        """The user's own end-to-end message, once the server stored it."""
        where = self.paint(f"[private to {sanitize(peer)}]", MAGENTA)
        return (
            f"{self.paint('✓', GREEN)} {LOCK} {where} "
            f"{self.paint('you', BOLD)}: {sanitize(text)}"
        )

    def plain_sent(self, peer: str, text: str) -> str:
        """A private message sent with /plain: the server could read it."""
        where = self.paint(f"[private to {sanitize(peer)}, not encrypted]", MAGENTA)
        you = self.paint("you", BOLD)
        return f"{self.paint('✓', GREEN)} {where} {you}: {sanitize(text)}"

    def sealed_received(self, at: float, sender: str, text: str) -> str:
        """An end-to-end message from someone else, opened and checked."""
        return (
            f"{self._time(at)} {LOCK} {self.paint('[private]', MAGENTA, BOLD)} "
            f"{self.paint(sanitize(sender), MAGENTA, BOLD)}: {sanitize(text)}"
        )

    def sealed_placeholder(self, sender: str) -> str:
        """The note for the server's placeholder of a message from C{sender}."""
        return self.paint(
            f"-- {sanitize(sender)} sent you an end-to-end encrypted message: it "
            f"shows with {LOCK} if it was sealed for this device",
            BLUE,
        )

    def sealed_own_copy(self, at: float, peer: str, device: str, text: str) -> str:
        """A copy of what this user sent from another of their devices."""
        where = self.paint(f"[private to {sanitize(peer)}]", MAGENTA, BOLD)
        return (
            f"{self._time(at)} {LOCK} {where} {self.paint('you', BOLD)} "
            f"(on {sanitize(device)}): {sanitize(text)}"
        )

    def _time(self, at: float) -> str:
        return self.paint(time.strftime("%H:%M", self.local_time(at)), BLUE)

    def info(self, text: str) -> str:
        """A message from the client itself."""
        return self.paint(f"-- {_sanitize_lines(text)}", BLUE)

    def warning(self, text: str) -> str:
        """A message from the client that must not be missed."""
        return self.paint(_sanitize_lines(text), RED, BOLD)


def _sanitize_lines(text: str) -> str:
    # The client's own messages may quote the network (an error naming the
    # certificate's host names), yet may span lines.
    return "\n".join(sanitize(line) for line in text.split("\n"))
