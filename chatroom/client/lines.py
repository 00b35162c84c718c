"""
The wire format as the client sees it: each server line parsed into its kind
(see PROTOCOL.md), and the user's own lines recognised as messages.
"""

import calendar
import re
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Ok:
    """C{+OK}: the request succeeded."""

    text: str


@dataclass(frozen=True)
class Err:
    """C{-ERR code text}: the request failed."""

    code: str
    text: str


@dataclass(frozen=True)
class Data:
    """C{= text}: one data line of the reply being built."""

    text: str


@dataclass(frozen=True)
class RoomMessage:
    """
    C{[room] sender: text}: someone else's message in a room; an action
    (C{[room] * sender text}, their /me) if C{action}.
    """

    room: str
    sender: str
    text: str
    action: bool = False


@dataclass(frozen=True)
class PrivateMessage:
    """C{[private] sender: text}: a private message to this user (or action)."""

    sender: str
    text: str
    action: bool = False


@dataclass(frozen=True)
class Notice:
    """C{* text}: greeting, joins and leaves, server news."""

    text: str


@dataclass(frozen=True)
class Unrecognised:
    """A line of no known kind, shown as it is (after sanitising)."""

    text: str


@dataclass(frozen=True)
class Timestamped:
    """
    C{<time> <line>}: a live message sent when it was (C{at}, seconds since
    the epoch), as the server sends them after C{/set timestamps on}.
    """

    at: int
    line: "RoomMessage | PrivateMessage"


@dataclass(frozen=True)
class E2eDelivery:
    """
    C{~ e2e SENDER SENDERDEVICE USER DEVICE MSGID TIME CIPHERTEXT}: a sealed
    message for this device (docs/e2e.md); C{at} is when the server got it.
    """

    sender: str
    sender_device: str
    recipient: str
    device: str
    msgid: str
    at: int
    ciphertext: str


ServerLine = (
    Ok
    | Err
    | Data
    | RoomMessage
    | PrivateMessage
    | Notice
    | Timestamped
    | E2eDelivery
    | Unrecognised
)
Final = Ok | Err

_MESSAGE = re.compile(r"\[(?P<where>[^\]\s]+)\] (?P<sender>[^:\s]+): (?P<text>.*)")
_ACTION = re.compile(r"\[(?P<where>[^\]\s]+)\] \* (?P<sender>\S+) (?P<text>.*)")
_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
_TIMESTAMPED = re.compile(rf"(?P<at>{_TIME}) (?P<line>.*)")
_E2E = re.compile(
    rf"~ e2e (?P<sender>\S+) (?P<sender_device>\S+) (?P<recipient>\S+) "
    rf"(?P<device>\S+) (?P<msgid>\S+) (?P<at>{_TIME}) (?P<ciphertext>\S+)"
)
PRIVATE = "private"


def parse_line(line: str) -> ServerLine:
    """Tell the kind of one server line, without its line ending."""
    timed = _TIMESTAMPED.fullmatch(line)
    if timed is not None:
        inner = _parse_message(timed["line"])
        if inner is not None:
            return Timestamped(_seconds(timed["at"]), inner)
        # The delivery line has its own time; one sent with a session's
        # timestamp in front as well is still one.
        if timed["line"].startswith("~ "):
            line = timed["line"]
    sealed = _E2E.fullmatch(line)
    if sealed is not None:
        try:
            at = _seconds(sealed["at"])
        except ValueError:
            return Unrecognised(line)
        return E2eDelivery(**{**sealed.groupdict(), "at": at})
    if line == "+OK" or line.startswith("+OK "):
        return Ok(line[4:])
    if line == "-ERR" or line.startswith("-ERR "):
        code, _, text = line[5:].partition(" ")
        return Err(code, text)
    if line == "=" or line.startswith("= "):
        return Data(line[2:])
    if line == "*" or line.startswith("* "):
        return Notice(line[2:])
    message = _parse_message(line)
    return Unrecognised(line) if message is None else message


def _seconds(stamp: str) -> int:
    return calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))


def _parse_message(line: str) -> RoomMessage | PrivateMessage | None:
    match = _MESSAGE.fullmatch(line)
    action = match is None
    if action:
        match = _ACTION.fullmatch(line)
        if match is None:
            return None
    if match["where"] == PRIVATE:
        return PrivateMessage(match["sender"], match["text"], action)
    return RoomMessage(match["where"], match["sender"], match["text"], action)


@dataclass(frozen=True)
class SentMessage:
    """
    A line the user typed that is a message, not a command: C{target} is
    L{None} for the default room; C{private} marks C{/private} and C{/msg}.
    """

    text: str
    target: str | None = None
    private: bool = False
    action: bool = False


_TARGETED = re.compile(
    r"/(?P<command>public|private|msg|describe) +(?P<target>\S+) (?P<text>.*)"
)
_ACTING = re.compile(r"/me +(?P<text>.*\S.*)")


def classify_outgoing(line: str) -> SentMessage | None:
    """The message a typed line sends, or L{None} if it is a command."""
    if not line.startswith("/"):
        return SentMessage(line)
    acting = _ACTING.fullmatch(line)
    if acting is not None:
        return SentMessage(acting["text"].strip(), action=True)
    match = _TARGETED.fullmatch(line)
    if match is None:
        return None
    target = match["target"].removeprefix("<").removesuffix(">")
    command = match["command"]
    return SentMessage(
        match["text"],
        target,
        private=command != "public",
        action=command == "describe",
    )


_NEW = re.compile(r"\bnew\b", re.IGNORECASE)


def says_name_is_new(reply_text: str) -> bool:
    """
    Whether the C{+OK} reply to a bare name says the account is new (so the
    password is chosen, and asked twice) rather than known. The wording is
    the server's; the client relies only on the word "new" appearing.
    """
    return _NEW.search(reply_text) is not None
