"""
The one place that knows what each kind of server line looks like.

Every function returns the complete line as bytes, CRLF included, so the
protocol writes it as is and a room message is encoded once per fan-out, not
once per recipient.
"""

import time

CRLF = b"\r\n"


def ok(text: str = "") -> bytes:
    return (f"+OK {text}" if text else "+OK").encode("utf-8") + CRLF


def err(code: str, text: str) -> bytes:
    return f"-ERR {code} {text}".encode() + CRLF


def data(text: str) -> bytes:
    return f"= {text}".encode() + CRLF


def notice(text: str) -> bytes:
    return f"* {text}".encode() + CRLF


def room_message(room: str, sender: str, text: str) -> bytes:
    return f"[{room}] {sender}: {text}".encode() + CRLF


def private_message(sender: str, text: str) -> bytes:
    return f"[private] {sender}: {text}".encode() + CRLF


def room_action(room: str, sender: str, text: str) -> bytes:
    """
    An action (/me): C{*} stands where a sender's name would, and no name
    is C{*}, so it is never read as a message from someone.
    """
    return f"[{room}] * {sender} {text}".encode() + CRLF


def private_action(sender: str, text: str) -> bytes:
    return f"[private] * {sender} {text}".encode() + CRLF


def e2e_message(
    sender: str,
    sender_device: str,
    recipient: str,
    device: str,
    msgid: str,
    at: int,
    ciphertext: str,
) -> bytes:
    """
    A ciphertext for this session's device: C{~ e2e}, a line for the
    client to decrypt, never for a person to read (docs/e2e.md).
    """
    return (
        f"~ e2e {sender} {sender_device} {recipient} {device} {msgid}"
        f" {timestamp(at)} {ciphertext}".encode()
        + CRLF
    )


def timestamp(ms: int) -> str:
    """The time history lines and timestamped live lines begin with."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def timestamped(ms: int, line: bytes) -> bytes:
    """A live line as a session with C{/set timestamps on} gets it."""
    return timestamp(ms).encode() + b" " + line
