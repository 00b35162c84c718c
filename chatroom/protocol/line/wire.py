"""
The one place that knows what each kind of server line looks like.

Every function returns the complete line as bytes, CRLF included, so the
protocol writes it as is and a room message is encoded once per fan-out, not
once per recipient.
"""

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
