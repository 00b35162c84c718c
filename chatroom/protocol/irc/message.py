"""
IRC messages: one parsed line (IRCv3 message tags, prefix, command, params)
and the one function that formats a line to send.  Pure: no I/O.
"""

from __future__ import annotations

from typing import NamedTuple

# RFC 1459: 512 bytes a line, CR LF included; IRCv3 message-tags adds up to
# 8191 bytes of tags ("@", tags and the space after them).
MAX_BODY = 510
MAX_TAGS = 8191
MAX_LINE = MAX_BODY + MAX_TAGS + 1
# How IRC clients send /me: a CTCP ACTION in a PRIVMSG (the text, then \x01).
CTCP_ACTION = "\x01ACTION"
# What a client may send of tags: 4094 bytes, "@" and the space after them
# making 4096 (message-tags); the rest of the 8191 is the server's to add.
MAX_CLIENT_TAGS = 4096

_UNESCAPE = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
_ESCAPE = str.maketrans(
    {";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r", "\n": "\\n"}
)


class Message(NamedTuple):
    """One line from a client, parsed once."""

    tags: dict[str, str]
    source: str | None
    command: str
    params: list[str]


class ParseError(ValueError):
    """A line that is not an IRC message (nothing but spaces, say)."""


def unescape_tag_value(value: str) -> str:
    out = []
    chars = iter(value)
    for char in chars:
        if char == "\\":
            following = next(chars, None)
            if following is None:
                break
            out.append(_UNESCAPE.get(following, following))
        else:
            out.append(char)
    return "".join(out)


def escape_tag_value(value: str) -> str:
    return value.translate(_ESCAPE)


def parse_tags(text: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in text.split(";"):
        if not item:
            continue
        key, _, value = item.partition("=")
        tags[key] = unescape_tag_value(value)
    return tags


def client_only(tags: dict[str, str]) -> dict[str, str] | None:
    """The client-only tags (C{+name}) of C{tags}, the ones passed on; or None."""
    kept = {key: value for key, value in tags.items() if key.startswith("+")}
    return kept or None


def encode_tags(tags: dict[str, str | None]) -> str:
    """C{tags} as a line carries them, without the C{@}."""
    return ";".join(
        key if value is None or value == "" else f"{key}={escape_tag_value(value)}"
        for key, value in tags.items()
    )


def with_tags(lines: bytes, tags: bytes) -> bytes:
    """
    Encoded C{lines} (CR LF ended) with encoded C{tags} (no C{@}) added to
    each, before any they carry: cheaper than formatting them again.
    """
    if not tags:
        return lines
    out = []
    for line in lines.split(b"\r\n"):
        if not line:
            continue
        if line.startswith(b"@"):
            out.append(b"@" + tags + b";" + line[1:] + b"\r\n")
        else:
            out.append(b"@" + tags + b" " + line + b"\r\n")
    return b"".join(out)


def split_tags(line: str) -> tuple[str, str]:
    """The tags part (without the C{@}) and the rest of C{line}."""
    if not line.startswith("@"):
        return "", line
    tags, _, rest = line[1:].partition(" ")
    return tags, rest.lstrip(" ")


def parse(line: str) -> Message:
    """Parse one line (no CR LF); L{ParseError} if there is no command."""
    tag_text, rest = split_tags(line)
    tags = parse_tags(tag_text) if tag_text else {}
    source = None
    if rest.startswith(":"):
        source, _, rest = rest[1:].partition(" ")
        rest = rest.lstrip(" ")
    params: list[str] = []
    trailing = None
    head, sep, tail = rest.partition(" :")
    if rest.startswith(":"):
        head, trailing = "", rest[1:]
    elif sep:
        trailing = tail
    words = head.split()
    if not words:
        raise ParseError("no command")
    command, params = words[0].upper(), words[1:]
    if trailing is not None:
        params.append(trailing)
    return Message(tags, source, command, params)


def format_line(
    command: str,
    *params: str,
    source: str | None = None,
    tags: dict[str, str | None] | None = None,
) -> bytes:
    """One line to send, CR LF ended; the last param is trailing when it must be."""
    parts = []
    if tags:
        parts.append("@" + encode_tags(tags))
    if source is not None:
        parts.append(":" + source)
    parts.append(command)
    if params:
        *middle, last = params
        parts.extend(middle)
        if not last or last.startswith(":") or " " in last:
            parts.append(":" + last)
        else:
            parts.append(last)
    return (" ".join(parts) + "\r\n").encode("utf-8")


def head_length(command: str, *middle: str, source: str | None = None) -> int:
    """
    Bytes of a line up to its trailing parameter, colon not counted:
    C{:source command middle... } (L{format_line} without tags).
    """
    head = f"{command} {' '.join(middle)} " if middle else f"{command} "
    if source is not None:
        head = f":{source} {head}"
    return len(head.encode("utf-8"))


def split_text(text: str, budget: int) -> list[str]:
    """C{text} in pieces of at most C{budget} UTF-8 bytes, split between characters."""
    data = text.encode("utf-8")
    if len(data) <= budget:
        return [text]
    pieces, start = [], 0
    while start < len(data):
        end = min(start + budget, len(data))
        # Back off to a character boundary (not a continuation byte).
        while end < len(data) and (data[end] & 0xC0) == 0x80:
            end -= 1
        pieces.append(data[start:end].decode("utf-8"))
        start = end
    return pieces
