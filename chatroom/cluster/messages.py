"""
What may come off the bus.  A node trusts Redis to carry what the others
published, not every publisher to be well: a message of the wrong shape is
refused here, before it touches any state, and the bus logs and drops it.
One node's bug (or anyone who can publish on the channel) must not crash
another node's subscriber, stall its room order, or put control characters
in front of its clients.
"""

from __future__ import annotations

import json

from chatroom.errors import BadName, BadText
from chatroom.names import check_name, check_text


class BadMessage(ValueError):
    """A bus message that is not one a node sends."""


def decode(raw: object) -> dict:
    """The message published as C{raw}, checked; or L{BadMessage}."""
    # txredisapi hands over numbers as numbers, and text it cannot decode
    # as bytes.
    if not isinstance(raw, str | bytes):
        raise BadMessage(f"a {type(raw).__name__}, not JSON text")
    try:
        message = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise BadMessage("not JSON") from e
    check(message)
    return message


def check(message: object) -> None:
    """Raise L{BadMessage} unless C{message} has the shape of its kind."""
    if not isinstance(message, dict):
        raise BadMessage("not an object")
    node = _field(message, "n", str)
    if not 0 < len(node) <= 255 or not node.isprintable():
        raise BadMessage("bad node name")
    kind = _field(message, "t", str)
    fields = _KINDS.get(kind)
    if fields is None:
        raise BadMessage(f"unknown kind {kind[:20]!r}")
    for name, checker in fields.items():
        checker(message, name)
    if kind == "event":
        channel, event = message["c"], message["e"]
        if event["kind"] == "room" and channel[0] != "room":
            raise BadMessage("a room message belongs on a room channel")


def _field(data: dict, name: str, kind: type) -> object:
    value = data.get(name)
    # bool is an int to Python, never to us.
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BadMessage(f"{name}: missing or not a {kind.__name__}")
    return value


def _id(data: dict, name: str) -> None:
    if _field(data, name, int) < 1:
        raise BadMessage(f"{name}: not an id")


def _id_or_none(data: dict, name: str) -> None:
    if data.get(name) is not None:
        _id(data, name)


def _time(data: dict, name: str) -> None:
    if _field(data, name, int) < 0:
        raise BadMessage(f"{name}: not a time")


def _name(data: dict, name: str) -> None:
    try:
        check_name(_field(data, name, str))
    except BadName:
        raise BadMessage(f"{name}: not a valid name") from None


def _text(data: dict, name: str) -> None:
    try:
        check_text(_field(data, name, str))
    except BadText:
        raise BadMessage(f"{name}: not text a client may see") from None


def _token(data: dict, name: str) -> None:
    if data.get(name) is not None:
        _id(data, name)


def _channel(data: dict, name: str) -> None:
    channel = _field(data, name, list)
    if len(channel) != 2 or channel[0] not in ("room", "user"):
        raise BadMessage(f"{name}: not a channel")
    _id({"id": channel[1]}, "id")


_EVENTS = {
    "room": {"room": _name, "seq": _id, "sender": _name, "text": _text, "at": _time},
    "private": {"sender": _name, "text": _text, "at": _time, "kept_id": _id_or_none},
    "notice": {"text": _text},
}


def _event(data: dict, name: str) -> None:
    event = _field(data, name, dict)
    fields = _EVENTS.get(event.get("kind"))
    if fields is None:
        raise BadMessage(f"{name}: unknown event kind")
    for field, checker in fields.items():
        checker(event, field)


_KINDS = {
    "event": {"c": _channel, "e": _event, "x": _token},
    "online": {"u": _id},
    "offline": {"u": _id},
    "hello": {},
    "bye": {},
    "join": {"r": _id, "rn": _name, "u": _id, "un": _name},
    "leave": {"r": _id, "u": _id},
    "rename": {"u": _id, "un": _name},
    "default": {"u": _id, "r": _id_or_none},
    "skip": {"r": _id, "s": _id},
}
